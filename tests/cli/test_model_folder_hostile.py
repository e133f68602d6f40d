"""Hostile model folders and edited cards, through the real front doors (issue 26.4, 26.5).

Each test builds its model folder in code: the user library lives in the per-test data
folder (``XRAYDESK_DATA_DIR``, tests/conftest.py), the bundled folder is redirected to a
temporary one where a test needs it. Hangs are ruled out by running the command in a
fresh interpreter with a timeout.
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
from PIL import Image

from tests.paths import REPO_ROOT
from xraydesk import paths
from xraydesk.cli import main
from xraydesk.errors import ModelError
from xraydesk.model import anchor
from xraydesk.model.card import MEANING_FIELDS, ModelCard, meaning_hash

HANG_S = 60  # far above a listing's second: past it the command is stuck


def _film(tmp_path: Path) -> Path:
    path = tmp_path / "film.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (128, 128), dtype=np.uint8)).save(path)
    return path


def _user_copy(card_path: Path, name: str, edit=None, integrity: bool = True) -> Path:
    """A copy of a model in the user library (weights linked), its card edited by ``edit``."""
    library = paths.user_models_dir()
    data = json.loads(card_path.read_text(encoding="utf-8"))
    weights = library / f"{name}.safetensors"
    weights.symlink_to(card_path.with_suffix(".safetensors").resolve())
    data["name"], data["weights"]["file"] = name, weights.name
    if edit is not None:
        edit(data)
    if not integrity:
        data.pop("integrity", None)
    out = library / f"{name}.json"
    if integrity:  # as an attacker would: the integrity hash recomputed after the edit
        data["integrity"] = {"covers": list(MEANING_FIELDS), "sha256": meaning_hash(data)}
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


def _swap_names(data: dict) -> None:
    first, last = data["classes"][0], data["classes"][-1]
    first["name"], last["name"] = last["name"], first["name"]


def _no_bundled(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: tmp_path / "no-bundled")


def _run_child(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``xraydesk ARGS`` in a fresh interpreter with this test's data folder, no bundled
    models (a hang fails the test instead of stalling the run)."""
    code = (
        "import sys; from pathlib import Path; from xraydesk import paths; "
        f"paths.bundled_models_dir = lambda: Path({str(tmp_path / 'none')!r}); "
        "from xraydesk.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        env={**os.environ},
        cwd=tmp_path,
    )


# -- 26.4: an unverified card says so in every result ------------------------------------------


def test_unverified_card_with_swapped_names_warns_in_every_classify_row(
    test_model_path, tmp_path, monkeypatch, capsys
):
    _no_bundled(monkeypatch, tmp_path)
    _user_copy(test_model_path, "edited", _swap_names, integrity=False)
    film = str(_film(tmp_path))
    assert main(["classify", film, "--model", "edited", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert "card_unverified" in row["warnings"]
    message = [w for w in row["warning_messages"] if w["code"] == "card_unverified"]
    assert "no integrity record" in message[0]["message"]
    assert main(["classify", film, "--model", "edited", "--no-skip"]) == 0
    assert "card_unverified" in capsys.readouterr().out  # the table's WARNINGS column


def test_unverified_card_warns_in_batch_rows_and_csv(test_model_path, tmp_path, monkeypatch):
    _no_bundled(monkeypatch, tmp_path)
    _user_copy(test_model_path, "old-card", integrity=False)
    folder = tmp_path / "films"
    folder.mkdir()
    shutil.copy(_film(tmp_path), folder / "a.png")
    out = tmp_path / "rows.csv"
    assert main(["classify", str(folder), "--model", "old-card", "--csv", str(out)]) == 0
    assert "card_unverified" in out.read_text(encoding="utf-8")


def test_rows_from_a_verified_card_are_not_reused_once_it_is_unverified(
    test_model_path, tmp_path, monkeypatch, capsys
):
    _no_bundled(monkeypatch, tmp_path)
    folder = tmp_path / "films"
    folder.mkdir()
    shutil.copy(_film(tmp_path), folder / "a.png")
    card = _user_copy(test_model_path, "mine")
    assert main(["classify", str(folder), "--model", "mine", "--json"]) == 0
    assert "card_unverified" not in capsys.readouterr().out
    data = json.loads(card.read_text(encoding="utf-8"))
    del data["integrity"]
    card.write_text(json.dumps(data), encoding="utf-8")
    assert main(["classify", str(folder), "--model", "mine", "--json"]) == 0
    assert "card_unverified" in capsys.readouterr().out


def test_bundled_weights_under_swapped_names_and_a_recomputed_hash_are_refused(
    tmp_path, monkeypatch, capsys
):
    _no_bundled(monkeypatch, tmp_path)
    bundled = REPO_ROOT / "models" / "chest-3class.json"
    forged = _user_copy(bundled, "chest-copy", _swap_names)  # integrity recomputed
    assert main(["models"]) == 0
    captured = capsys.readouterr()
    assert "chest-copy" not in captured.out
    assert "uses the weights of the bundled model 'chest-3class'" in captured.err
    assert main(["classify", str(_film(tmp_path)), "--model", str(forged)]) == 2
    err = capsys.readouterr().err
    assert str(forged) in err and "Traceback" not in err


def test_an_edited_card_in_the_shipped_folder_does_not_load(tmp_path, monkeypatch, capsys):
    """The shipped folder's cards must match the digests recorded in the program, even with
    a recomputed integrity hash (here a copy of models/ stands in for the shipped folder)."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for source in (REPO_ROOT / "models").glob("*.json"):
        shutil.copy(source, shipped / source.name)
        (shipped / source.with_suffix(".safetensors").name).symlink_to(
            source.with_suffix(".safetensors")
        )
    monkeypatch.setattr(anchor, "shipped_models_dir", lambda: shipped)
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: shipped)
    assert main(["models"]) == 0
    assert "chest-3class" in capsys.readouterr().out  # the untouched copy loads
    path = shipped / "chest-3class.json"
    card = ModelCard.read(path)
    card.classes[0], card.classes[2] = card.classes[2], card.classes[0]
    card.temperature = 20.0
    card.write(path)  # a fresh, self-consistent integrity hash
    assert main(["models"]) == 0
    captured = capsys.readouterr()
    assert "differs from the one this copy of XRayDesk was built with" in captured.err
    assert str(path) in captured.err
    assert main(["classify", str(_film(tmp_path)), "--model", "chest-3class"]) == 2
    assert "no model named 'chest-3class'" in capsys.readouterr().err
    (shipped / "extra.json").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ModelError, match="is not one this copy"):
        ModelCard.read(shipped / "extra.json")


def test_the_recorded_digests_match_the_shipped_models():
    """Fails when models/ changes without ``python -m xraydesk.model.anchor``."""
    assert anchor.compute_digests(REPO_ROOT / "models") == anchor._digests()
    assert anchor.render(anchor._digests()) == anchor.DIGESTS_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize("runtime", ["auto", "torch"])
def test_an_architecture_xraydesk_cannot_build_is_refused_clearly(
    test_model_path, tmp_path, monkeypatch, capsys, runtime
):
    _no_bundled(monkeypatch, tmp_path)
    card = _user_copy(test_model_path, "small", lambda d: d.update(architecture="resnet18"), False)
    film = str(_film(tmp_path))
    assert main(["classify", film, "--model", str(card), "--runtime", runtime]) == 2
    err = capsys.readouterr().err
    assert "architecture 'resnet18' is not one XRayDesk can run" in err and str(card) in err


def test_a_card_with_more_classes_than_the_weights_is_refused_clearly(
    test_model_path, tmp_path, monkeypatch, capsys
):
    _no_bundled(monkeypatch, tmp_path)

    def fourth_class(data):
        data["classes"].append({"id": "tb", "name": "Tuberculosis"})

    card = _user_copy(test_model_path, "four", fourth_class, integrity=False)
    assert main(["classify", str(_film(tmp_path)), "--model", str(card)]) == 2
    err = capsys.readouterr().err
    assert "the weights have 3 outputs" in err and "4 classes" in err
    assert "four.safetensors" in err and "Traceback" not in err


def test_a_flattening_temperature_without_integrity_is_refused(
    test_model_path, tmp_path, monkeypatch, capsys
):
    _no_bundled(monkeypatch, tmp_path)
    card = _user_copy(test_model_path, "flat", lambda d: d.update(temperature=50), False)
    assert main(["classify", str(_film(tmp_path)), "--model", str(card)]) == 2
    assert "temperature 50.0 is outside" in capsys.readouterr().err


# -- 26.5: files in the model folder that are not cards ----------------------------------------


def _hostile_library(test_model_path: Path, kind: str) -> Path:
    library = paths.user_models_dir()
    _user_copy(test_model_path, "mine")
    if kind == "fifo":
        bad = library / "notes.json"
        os.mkfifo(bad)
    elif kind == "dev-zero":
        bad = library / "z.json"
        bad.symlink_to("/dev/zero")
    else:
        bad = library / "deep.json"
        bad.write_text("[" * 200_000 + "]" * 200_000, encoding="ascii")
    return bad


CAUSES = {"fifo": "a named pipe", "dev-zero": "a device", "brackets": "nested too deeply"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("kind", list(CAUSES))
def test_models_classify_and_rename_skip_a_hostile_card_file(test_model_path, tmp_path, kind):
    bad = _hostile_library(test_model_path, kind)
    listed = _run_child(["models"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "mine" in listed.stdout
    assert f"skipped {bad}" in listed.stderr and CAUSES[kind] in listed.stderr
    assert "Traceback" not in listed.stderr
    film = str(_film(tmp_path))
    classified = _run_child(["classify", film, "--model", "mine", "--json"], tmp_path)
    assert classified.returncode == 0, classified.stderr
    row = json.loads(classified.stdout.splitlines()[-1])
    assert row["prediction"] or row["indeterminate"]  # a verdict (noise: the gate withholds)
    renamed = _run_child(["models", "rename", "mine", "ours"], tmp_path)
    assert renamed.returncode == 0, renamed.stderr
    assert (paths.user_models_dir() / "ours.json").is_file()


def test_an_oversized_card_is_refused_by_name(test_model_path, tmp_path, monkeypatch, capsys):
    _no_bundled(monkeypatch, tmp_path)
    big = paths.user_models_dir() / "big.json"
    with big.open("wb") as f:
        f.truncate(64 * 1024**2)  # sparse: 64 MiB of nothing
    assert main(["models"]) == 0
    assert f"skipped {big}: model card too large" in capsys.readouterr().err


def test_torch_loader_names_an_unknown_architecture_of_a_card_made_in_code(test_model_path):
    from xraydesk.model.saving import load_network

    card = ModelCard.read(test_model_path)
    card.architecture = "resnet18"
    with pytest.raises(ModelError, match="cannot build the network"):
        load_network(card)
