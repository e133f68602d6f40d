"""Issue 27 item 4: what the film says when the file does not. The appearance heads
(``trust.appearance``) on real radiographs of patients they never trained on: mirrored
films flagged, adults told from young children, and the estimate reaching the one verdict
as ``mirrored`` and an estimated ``outside_population``."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tests.dicom_factory import make_dicom
from tests.paths import REPO_ROOT
from training.train_appearance import held_out
from xraydesk.classifier import Classifier
from xraydesk.errors import ModelError
from xraydesk.imaging import load_xray
from xraydesk.imaging.xray import XRay
from xraydesk.model.card import ModelCard
from xraydesk.trust.appearance import (
    APPEARANCE_FILE,
    N_OUTPUTS,
    Appearance,
    AppearanceHeads,
    appearance_warnings,
)
from xraydesk.trust.codes import MIRRORED, OUTSIDE_POPULATION, ROTATED, ResultWarning
from xraydesk.trust.gate import unit_thumbnail

PEDIATRIC = REPO_ROOT / "models" / "pediatric-pneumonia.json"
CHEST = REPO_ROOT / "models" / "chest-3class.json"
N = 8  # films per group


def films(shared_data: Path, pool: str, label: str, trained_on: bool) -> list[Path]:
    """The first N films of a pool's label, from patients the heads never trained on."""
    rows = csv.DictReader((shared_data / pool / "manifest.csv").open(newline=""))
    chosen = [
        shared_data / pool / r["path"]
        for r in rows
        if r["label"] == label and (not trained_on or held_out(r["patient"] or r["path"]))
    ]
    return sorted(chosen)[:N]


def mirrored(xray: XRay) -> XRay:
    return dataclasses.replace(xray, pixels=np.ascontiguousarray(xray.pixels[:, ::-1]))


def estimates(paths: list[Path], flip: bool = False) -> list[Appearance]:
    xrays = [load_xray(p) for p in paths]
    if flip:
        xrays = [mirrored(x) for x in xrays]
    thumbs = np.stack([unit_thumbnail(x.render()) for x in xrays])
    return AppearanceHeads.default().estimate(thumbs)


@pytest.fixture(scope="module")
def children(shared_data: Path) -> list[Path]:
    return films(shared_data, "kermany-pediatric", "normal", trained_on=True)


@pytest.fixture(scope="module")
def adults(shared_data: Path) -> list[Path]:
    """Adults from a hospital the heads never saw (NIH ChestX-ray8 via ozturk-nih)."""
    return films(shared_data, "ozturk-nih", "normal", trained_on=False)


def test_flipped_films_are_flagged_and_untouched_ones_are_not(children, adults):
    for group in (children, adults):
        assert sum(a.mirrored for a in estimates(group)) <= 1
        assert sum(a.mirrored for a in estimates(group, flip=True)) >= N - 1


def test_adults_are_told_from_young_children(children, adults, samples_dir):
    assert sum(a.group == "young child" for a in estimates(children)) >= N - 1
    assert sum(a.group == "adult" for a in estimates(adults)) >= N - 1
    full_size = sorted((samples_dir / "fullres").glob("nih-*.png"))
    assert full_size and all(a.group == "adult" for a in estimates(full_size))


def test_adult_film_without_age_on_the_pediatric_card_is_warned_as_an_estimate(adults):
    pediatric, chest = ModelCard.read(PEDIATRIC), ModelCard.read(CHEST)
    looks = [a for a in estimates(adults) if a.group == "adult"]
    (warning,) = appearance_warnings(pediatric, looks[0])
    assert warning.code == OUTSIDE_POPULATION
    assert "looks like an adult's film (estimated from the image, p=" in warning.message
    assert "1-5 years" in warning.message and "gives no age" in warning.message
    assert appearance_warnings(chest, looks[0]) == []  # adults are in its population
    # an age in the file or from the user wins over the estimate
    assert appearance_warnings(pediatric, looks[0], stated_age=3) == []


def test_the_estimate_is_not_used_on_films_the_gate_rejected():
    pediatric = ModelCard.read(PEDIATRIC)
    both = Appearance(p_mirrored=0.99, p_adult=0.99)
    codes = [w.code for w in appearance_warnings(pediatric, both)]
    assert codes == [OUTSIDE_POPULATION, MIRRORED]
    turned = [ResultWarning(ROTATED, "rotated by 180 degrees")]
    assert appearance_warnings(pediatric, both, turned) == []


def pediatric_test_model(test_model_path: Path, tmp_path: Path) -> Classifier:
    """The small test model with the pediatric card's population (outside the integrity
    hash, so the card stays verified)."""
    data = json.loads(test_model_path.read_text())
    data["population"] = json.loads(PEDIATRIC.read_text())["population"]
    card = tmp_path / test_model_path.name
    card.write_text(json.dumps(data))
    for weights in test_model_path.parent.glob(test_model_path.stem + ".*"):
        if weights.suffix != ".json":
            (tmp_path / weights.name).symlink_to(weights)
    return Classifier.load(card, device="cpu")


def test_trust_check_gives_both_codes_in_its_verdict(test_model_path, tmp_path, adults):
    from xraydesk.trust.check import TrustCheck

    classifier = pediatric_test_model(test_model_path, tmp_path)
    check = TrustCheck(classifier, ood=False)
    result = check.classify(mirrored(load_xray(adults[0])))
    assert {OUTSIDE_POPULATION, MIRRORED} <= set(result.verdict.codes)
    assert result.codes == result.verdict.codes
    # a DICOM that gives a child's age: the header wins, no estimated population warning
    child = tmp_path / "child.dcm"
    pixels = (load_xray(adults[0]).render() * 255).astype(np.uint8)
    make_dicom(child, pixels, extra={"PatientAge": "004Y"})
    codes = check.classify(load_xray(child)).codes
    assert OUTSIDE_POPULATION not in codes and MIRRORED not in codes


def test_the_spark_path_carries_the_codes(test_model_path, tmp_path, adults):
    """Spark's executor: the decode stage estimates, ``decide_all`` warns (as it calls them)."""
    import threading

    from xraydesk.batch.prepare import Preparer
    from xraydesk.trust.verdict import decide_all

    classifier = pediatric_test_model(test_model_path, tmp_path)
    flipped = tmp_path / "flipped.png"
    from PIL import Image

    Image.open(adults[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped)
    prepare = Preparer(classifier, None, "", threading.Event(), skip_known=False)
    items = [prepare(adults[0]), prepare(flipped)]
    probs = np.full((2, len(classifier.class_ids)), 1.0 / len(classifier.class_ids))
    verdicts = decide_all(
        classifier,
        probs,
        None,
        ood=None,
        gate_warnings=[i.warnings for i in items],
        metadata=[i.metadata for i in items],
        appearance=[i.appearance for i in items],
    )
    assert OUTSIDE_POPULATION in verdicts[0].codes and MIRRORED not in verdicts[0].codes
    assert {OUTSIDE_POPULATION, MIRRORED} <= set(verdicts[1].codes)


def test_batch_engine_rows_carry_the_codes(test_model_path, tmp_path, adults):
    from PIL import Image

    from xraydesk.batch.run import BatchOptions, BatchRun

    (tmp_path / "model").mkdir()
    classifier = pediatric_test_model(test_model_path, tmp_path / "model")
    folder = tmp_path / "films"
    folder.mkdir()
    film = Image.open(adults[0])
    film.save(folder / "adult.png")
    film.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "mirrored.png")
    run = BatchRun([folder], classifier, BatchOptions(recursive=True, skip_known=False))
    codes = {row.path.name: row.warning_codes for row in run.rows()}
    assert OUTSIDE_POPULATION in codes["adult.png"] and MIRRORED not in codes["adult.png"]
    assert {OUTSIDE_POPULATION, MIRRORED} <= set(codes["mirrored.png"])


# -- the weights file -------------------------------------------------------------------------


def test_shipped_weights_record_how_they_were_trained():
    heads = AppearanceHeads.load(APPEARANCE_FILE)
    assert heads.info["trained_by"] == "training/train_appearance.py"
    record = json.loads(APPEARANCE_FILE.with_suffix(".json").read_text())
    assert record["held_out"] == heads.info["held_out"]
    unseen = record["held_out"]["ozturk-nih (never trained on)"]
    assert unseen["n"] > 900 and 0.0 <= unseen["mirrored_flagged"] <= 1.0


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (None, "No such file"),
        (b"", ""),
        (b"\x00" * 64, ""),
        (b"\xff" * 8 + b"{not json", ""),
    ],
)
def test_missing_or_hostile_weights_are_a_clear_error(tmp_path, content, cause):
    """A check that silently vanished would let a pediatric model answer for an adult
    without a word: the app refuses, naming the file, as it does for the gate."""
    path = tmp_path / "appearance.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match="mirror and age-group check could not be loaded") as e:
        AppearanceHeads.load(path)
    assert str(path) in str(e.value) and cause in str(e.value)


def test_weights_of_the_wrong_shape_are_refused(tmp_path):
    """The gate's own file has nine outputs, not four: refused, naming the tensor."""
    from xraydesk.trust.gate import GATE_FILE

    with pytest.raises(ModelError, match=r"out\.weight"):
        AppearanceHeads.load(GATE_FILE)


def test_numpy_heads_match_the_torch_network(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from xraydesk.trust.gate_net import GateNet, torch_logits

    torch.manual_seed(0)
    net = GateNet(N_OUTPUTS).eval()
    path = tmp_path / "heads.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    thumbs = np.random.default_rng(0).normal(size=(3, 1, 64, 64)).astype(np.float32)
    ours = AppearanceHeads.load(path).logits(thumbs)
    assert ours.shape == (3, N_OUTPUTS)
    np.testing.assert_allclose(ours, torch_logits(net)(thumbs), atol=1e-4)
