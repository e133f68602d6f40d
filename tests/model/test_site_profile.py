"""The site profile: adopted from one half of a validation, applied by the one verdict.

The adopted temperature and indeterminate threshold are checked on the other half
against probabilities computed independently from the network's raw logits; a fresh
load and a new process see the profile; an edited or foreign profile is refused (the
model runs with its card's calibration and every result says so); removal works.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xraydesk.classifier import Classifier
from xraydesk.cli import main
from xraydesk.imaging.loader import load_xray
from xraydesk.model.card import ModelCard
from xraydesk.model.site_profile import SiteProfile, load_state, profile_path, save_profile
from xraydesk.trust.verdict import decide

THRESHOLD = 0.85


def _site_csv(pool: Path, out: Path, n: int, seed: int) -> Path:
    """A seeded subset of the pool's manifest (path, label, patient) as the site's labels."""
    with (pool / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = random.Random(seed).sample(rows, n)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "patient"])
        writer.writerows([r["path"], r["label"], r["patient"]] for r in rows)
    return out


def _softmax(logits: np.ndarray, t: float) -> np.ndarray:
    z = logits.astype(np.float64) / t
    z -= z.max()
    return np.exp(z) / np.exp(z).sum()


def test_adopted_profile_changes_the_held_back_verdicts(
    shared_data: Path, tmp_path: Path, capsys
) -> None:
    pool = shared_data / "ozturk-nih"
    labels = _site_csv(pool, tmp_path / "labels.csv", 60, seed=11)
    out = tmp_path / "report"
    args = ["validate", "chest-3class", str(pool), "--labels", str(labels), "--adopt-profile"]
    args += ["--indeterminate-below", str(THRESHOLD), "--seed", "5", "--no-pdf"]
    assert main([*args, "--device", "cpu", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-back part" in printed and "optimistic" in printed
    report = json.loads(out.with_name("report.json").read_text())
    section = report["site_profile"]
    assert section["split"]["grouped_by"] == "patient"
    assert section["split"]["fit_images"] + section["split"]["held_back_images"] == 60
    assert "optimistic" in section["note"]

    card = ModelCard.read(Path("models/chest-3class.json"))
    stored = json.loads(profile_path(card).read_text())
    t_site = stored["temperature"]
    assert t_site != pytest.approx(card.temperature, abs=1e-3)
    assert stored["indeterminate_below"] == THRESHOLD
    assert stored["weights_sha256"] == card.weights_sha256

    # a fresh load sees the profile; the held-back half through the one verdict
    fresh = Classifier.load(card, device="cpu")
    assert fresh.site_profile.profile is not None
    assert fresh.site_profile.profile.n == section["split"]["fit_images"]
    held_names = {r["name"] for r in report["images"]} - _fit_names(report, section)
    images = [r for r in report["images"] if r["name"] in held_names]
    assert len(images) == section["split"]["held_back_images"]
    indeterminate = 0
    for row in images:
        xray = load_xray(pool / row["name"])
        logits = fresh.logits(fresh.preprocess(xray)[None])[0]
        expected = _softmax(logits, t_site)  # independently: softmax(logits / T_site)
        verdict = decide(fresh, fresh.probabilities(logits[None])[0])
        if expected.max() < THRESHOLD:
            indeterminate += 1
            assert verdict.prediction is None and verdict.error is None
            assert "indeterminate" in verdict.codes
            shown = verdict.indeterminate.probabilities
        else:
            assert "indeterminate" not in verdict.codes
            shown = verdict.prediction.probabilities
        got = np.array([shown[c] for c in card.class_ids])
        assert got == pytest.approx(expected, abs=1e-6)
    assert indeterminate > 0  # the threshold withheld some of the held-back half
    # the site's rule replaces the card's: what the card's rule withheld without the
    # profile is judged again, so exactly the images under the site's threshold are withheld
    with_profile = section["held_back_with_profile"]
    assert with_profile["withheld"]["n"] == indeterminate

    # a new process sees it too
    env = {**os.environ}
    done = subprocess.run(
        [sys.executable, "-m", "xraydesk", "models", "profile", "chest-3class"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"calibrated for this site on n = {section['split']['fit_images']}" in done.stdout


def _fit_names(report: dict, section: dict) -> set[str]:
    """The fit half's names, drawn again as the command drew them (patients, seed 5)."""
    from xraydesk.validate.profile_fit import split_fit_held

    class _Img:
        def __init__(self, row: dict, patient: str | None) -> None:
            self.name, self.patient = row["name"], patient

    class _Site:
        def __init__(self, image: _Img) -> None:
            self.image = image

    with open(report["site"]["labels_from"], newline="") as handle:
        patients = {r["path"]: r["patient"] or None for r in csv.DictReader(handle)}
    sites = [_Site(_Img(r, patients[r["name"]])) for r in report["images"]]
    fit, held = split_fit_held(sites, seed=section["split"]["seed"])  # type: ignore[arg-type]
    assert len(fit) == section["split"]["fit_images"]
    fit_patients = {s.image.patient for s in fit if s.image.patient}
    assert not fit_patients & {s.image.patient for s in held if s.image.patient}
    return {s.image.name for s in fit}


def _profile(card: ModelCard, temperature: float = 2.0) -> SiteProfile:
    thresholds = {cid: 0.3 for cid in card.class_ids}
    return SiteProfile(card.name, card.weights_sha256, temperature, 0.6, thresholds, 0.9, {"n": 7})


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "tamper", ["threshold", "temperature", "other model"], ids=lambda t: t.replace(" ", "-")
)
def test_tampered_profile_is_refused(test_model_path: Path, tmp_path: Path, tamper) -> None:
    from tests.model_factory import make_test_model

    card = ModelCard.read(test_model_path)
    path = save_profile(_profile(card), card)
    assert load_state(card).profile is not None
    target = card
    if tamper == "threshold":
        _edit(path, indeterminate_below=0.1)
    elif tamper == "temperature":
        _edit(path, temperature=0.5)
    else:  # a valid profile of this model, put where another model's profile goes
        target = ModelCard.read(make_test_model(tmp_path, name="other-3class", seed=3))
        profile_path(target).write_text(path.read_text())
    classifier = Classifier.load(target, device="cpu")
    state = classifier.site_profile
    assert state.profile is None
    why = "other weights" if tamper == "other model" else "changed after it was adopted"
    assert why in state.refused and str(profile_path(target)) in state.refused
    probs = np.array([0.5, 0.3, 0.2])
    verdict = decide(classifier, probs)  # runs without it: the card's probabilities, warned
    assert verdict.prediction is not None
    assert verdict.prediction.probabilities["normal"] == pytest.approx(0.5)
    assert "site_profile_refused" in verdict.codes


def test_profile_is_listed_and_removed(test_model_path: Path, capsys) -> None:
    card = ModelCard.read(test_model_path)
    save_profile(_profile(card), card)
    assert main(["models", "profile", str(test_model_path)]) == 0
    assert "calibrated for this site on n = 7" in capsys.readouterr().out
    classifier = Classifier.load(card, device="cpu")
    verdict = decide(classifier, np.array([0.5, 0.3, 0.2]))  # T = 2: top below 0.6
    assert verdict.prediction is None and "indeterminate" in verdict.codes
    assert set(verdict.site_positive) == {"normal", "pneumonia"}  # both reach 0.3
    assert main(["models", "profile", str(test_model_path), "--remove"]) == 0
    assert "Removed the site profile" in capsys.readouterr().out
    assert not profile_path(card).exists()
    assert Classifier.load(card, device="cpu").site_profile.profile is None
    assert main(["models", "profile", str(test_model_path), "--remove"]) == 0
    assert "nothing removed" in capsys.readouterr().out


def test_batch_rows_follow_the_profile(test_model_path: Path, tmp_path: Path, capsys) -> None:
    """The batch engine's rows (CLI, GUI batch, node) get the profile's verdict; rows made
    under a profile are not reused once it is removed (the database keys on it)."""
    from tests.hostile_files import small_png

    card = ModelCard.read(test_model_path)
    profile = _profile(card, temperature=5.0)
    save_profile(SiteProfile(**{**profile.__dict__, "indeterminate_below": 0.9}), card)
    site = tmp_path / "site"
    site.mkdir()
    for i in range(3):
        (site / f"a{i}.png").write_bytes(small_png(seed=i))
    args = ["classify", str(site), "--model", str(test_model_path), "--device", "cpu", "--json"]
    for reused in (False, True):
        assert main(args) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(rows) == 3
        for row in rows:
            assert row["prediction"] is None and row["error"] is None
            assert "indeterminate" in row["warnings"] and row["reused"] is reused
    assert main(["models", "profile", str(test_model_path), "--remove"]) == 0
    capsys.readouterr()
    assert main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # no site rule any more: classified again; the random images still name no class, as
    # the input gate flags them (the gate's codes say why, not the site's indeterminate)
    assert all(not r["reused"] and r["error"] is None for r in rows)
    assert not any("indeterminate" in r["warnings"] for r in rows)
    assert all(r["prediction"] or r["withheld_prediction"] for r in rows)
