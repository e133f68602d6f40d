"""What a model card may say, and what happens when it lies or the library holds junk.

Issue 18's defects 4, 7 and 8, and the model half of defect 1: each test here failed
before the fix it names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.model_factory import make_test_model
from tests.paths import REPO_ROOT
from xraydesk import paths
from xraydesk.classifier import Classifier, NonFiniteOutputError
from xraydesk.errors import ModelError
from xraydesk.imaging.xray import ImageMetadata, Window, XRay
from xraydesk.model import library
from xraydesk.model.card import ModelCard, meaning_hash


def _copy_model(card_path: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for f in (card_path, card_path.with_suffix(".safetensors")):
        shutil.copy(f, directory / f.name)
    return directory / card_path.name


def _edited(card_path: Path, directory: Path, edit) -> Path:
    """A copy of the card with ``edit(data)`` applied to its JSON, integrity record kept."""
    target = _copy_model(card_path, directory)
    data = json.loads(target.read_text())
    edit(data)
    target.write_text(json.dumps(data))
    return target


# -- defect 7: the card's meaning is integrity-checked --------------------------------------


def test_swapped_display_names_are_refused(test_model_path: Path, tmp_path: Path):
    def swap(data):
        a, b = data["classes"][0], data["classes"][2]
        a["name"], b["name"] = b["name"], a["name"]

    with pytest.raises(ModelError, match="integrity hash mismatch"):
        ModelCard.read(_edited(test_model_path, tmp_path, swap))


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 2.0), ("architecture", "resnet18")],
)
def test_any_result_bearing_edit_is_refused(test_model_path: Path, tmp_path, field, value):
    def edit(data):
        data[field] = value

    with pytest.raises(ModelError, match="integrity"):
        ModelCard.read(_edited(test_model_path, tmp_path, edit))


def test_edits_that_do_not_change_results_are_allowed(test_model_path: Path, tmp_path):
    def edit(data):
        data["description"] = "notes added by hand"
        data["limitations"].append("another limit")

    card = ModelCard.read(_edited(test_model_path, tmp_path, edit))
    assert card.verified and card.description == "notes added by hand"


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("temperature", float("inf"), "temperature"),
        ("temperature", float("nan"), "temperature"),
        ("temperature", 0.0, "temperature"),
        ("temperature", 1e6, "temperature"),
        ("mean", float("nan"), "invalid preprocessing"),
        ("std", float("inf"), "invalid preprocessing"),
        ("std", 0.0, "invalid preprocessing"),
        ("size", "224", "invalid preprocessing"),
        ("size", 1_000_000, "invalid preprocessing"),
        ("channels", True, "invalid preprocessing"),
        ("equalize", "yes", "invalid preprocessing"),
    ],
)
def test_every_number_in_the_card_is_validated(test_model_path, tmp_path, where, value, message):
    """Even with a recomputed integrity hash (someone who knows the format), absurd numbers
    that would print 'nan%' or flatten every probability to 33.3 % are refused."""

    def edit(data):
        (data if where == "temperature" else data["preprocessing"])[where] = value
        data["integrity"]["sha256"] = meaning_hash(data)

    with pytest.raises(ModelError, match=message):
        ModelCard.read(_edited(test_model_path, tmp_path, edit))


def test_empty_class_names_are_refused(test_model_path: Path, tmp_path: Path):
    def edit(data):
        data["classes"][1]["name"] = "  "
        data["integrity"]["sha256"] = meaning_hash(data)

    with pytest.raises(ModelError, match="display name"):
        ModelCard.read(_edited(test_model_path, tmp_path, edit))


def test_a_card_from_before_integrity_hashes_loads_unverified(test_model_path, tmp_path):
    card_path = _edited(test_model_path, tmp_path, lambda data: data.pop("integrity"))
    card = ModelCard.read(card_path)
    assert not card.verified
    Classifier.load(card, device="cpu")  # still usable
    card.write(card_path)  # writing it again adds the hash
    assert ModelCard.read(card_path).verified


def test_bundled_cards_carry_a_valid_integrity_hash():
    cards = sorted((REPO_ROOT / "models").glob("*.json"))
    assert cards, "no bundled model cards found"
    for path in cards:
        assert ModelCard.read(path, source="bundled").verified, path


# -- defect 4: a stray file in the library is skipped and named ------------------------------


STRAY = {
    "notes.json": "[]",
    "empty.json": "",
    "object.json": "{}",
    "binary.json": "\x00\xff",
    "string.json": '"a card?"',
}


def _library_with_strays(monkeypatch, tmp_path: Path) -> Path:
    bundled = tmp_path / "bundled"
    make_test_model(bundled, name="chest-3class")
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: bundled)
    user = paths.user_models_dir()
    make_test_model(user, name="mine")
    for name, text in STRAY.items():
        (user / name).write_text(text, encoding="latin-1")
    (user / "folder.json").mkdir()
    return user


def test_stray_json_files_in_the_library_are_skipped_and_named(monkeypatch, tmp_path):
    _library_with_strays(monkeypatch, tmp_path)
    assert [c.name for c in library.list_models()] == ["chest-3class", "mine"]
    assert library.resolve_model("mine").name == "mine"
    skipped = library.skipped_cards()
    for name in [*STRAY, "folder.json"]:
        assert any(name in problem for problem in skipped), (name, skipped)


def test_cli_lists_models_and_names_stray_files(monkeypatch, tmp_path: Path):
    user = _library_with_strays(monkeypatch, tmp_path)
    code = (
        "import sys; from xraydesk import paths; from pathlib import Path;"
        f"paths.bundled_models_dir = lambda: Path({str(tmp_path / 'bundled')!r});"
        "from xraydesk.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "XRAYDESK_DATA_DIR": str(user.parent)}
    done = subprocess.run(
        [sys.executable, "-c", code, "models"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "mine" in done.stdout and "chest-3class" in done.stdout
    assert "notes.json" in done.stderr


# -- defect 8: delete is all or nothing -------------------------------------------------------


def test_delete_removes_a_symlinked_extras_folder_as_a_link(monkeypatch, tmp_path: Path):
    card_path = make_test_model(paths.user_models_dir(), name="mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not the model's to delete")
    card_path.with_suffix("").symlink_to(elsewhere, target_is_directory=True)
    library.delete_user_model("mine")
    assert list(paths.user_models_dir().iterdir()) == []
    assert (elsewhere / "keep.txt").read_text() == "not the model's to delete"


def test_a_delete_that_fails_half_way_leaves_the_model_whole(monkeypatch, tmp_path: Path):
    """A real failure, not a mock, that even root meets: the library sits so deep that the
    card still fits in PATH_MAX inside the staging folder but the longer weights name does
    not, so the second of the three renames fails with ENAMETOOLONG. The delete must put
    the card back and say so, instead of leaving a card without weights."""
    stage_name = len(".deleting-mine-") + 8  # mkdtemp adds 8 random characters
    room = os.pathconf("/", "PC_PATH_MAX") - 1  # bytes of a path, without its NUL
    # models dir length L: L + 2 + stage + len("mine.json") <= room < ... + len(weights)
    target = room - 2 - stage_name - len("mine.json") - 3
    assert target + 2 + stage_name + len("mine.safetensors") > room
    deep = tmp_path
    while len(str(deep / "models")) < target - 200:
        deep = deep / ("d" * 200)
    deep = deep / ("e" * (target - len(str(deep / "x" / "models")) + 1))
    assert len(str(deep / "models")) == target
    deep.mkdir(parents=True)
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(deep))
    card_path = make_test_model(paths.user_models_dir(), name="mine")
    with pytest.raises(ModelError, match="nothing was removed"):
        library.delete_user_model("mine")
    assert card_path.is_file() and card_path.with_suffix(".safetensors").is_file()
    left = sorted(p.name for p in card_path.parent.iterdir())
    assert left == ["mine.json", "mine.safetensors"]  # and no staging folder left behind
    Classifier.load(ModelCard.read(card_path), device="cpu")


# -- defect 1, model half: NaN never becomes "normal" -----------------------------------------


def test_non_finite_pixels_never_give_a_prediction(test_classifier: Classifier):
    pixels = np.full((64, 64), np.nan, dtype=np.float32)
    xray = XRay(
        pixels=pixels,
        bits_stored=12,
        window=Window(center=2048.0, width=4096.0),
        metadata=ImageMetadata(path=Path("nan.dcm"), format="DICOM"),
    )
    with pytest.raises(NonFiniteOutputError, match="not a number"):
        test_classifier.predict(xray)
    with pytest.raises(NonFiniteOutputError):
        test_classifier.prediction_from(np.array([np.nan, 0.5, 0.5]))
