"""Issue 27 #3: evidence outside the lungs.

The lung-field prior on real films of every pool, the share of a class activation map
inside it (synthetic maps: a corner is flagged, the lung fields are not), the one
verdict with ``evidence_outside_lungs`` (indeterminate, the answer kept), and the front
doors: the viewer's ``TrustCheck``, the batch engine (its folded torch copy and the
classifier's own backend give the same shares) and the CLI's JSON row.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from xraydesk.batch.batch_model import BatchModel
from xraydesk.cli import main
from xraydesk.imaging import load_xray
from xraydesk.model.preprocessing import Preprocessing, equalize_histogram
from xraydesk.trust import TrustCheck, attention, decide, decide_all
from xraydesk.trust.attention import MIN_LUNG_SHARE, attention_warning, lung_share, lung_shares
from xraydesk.trust.codes import EVIDENCE_OUTSIDE_LUNGS
from xraydesk.trust.lung_fields import chest_mask, input_chest_mask, lung_mask

POOL_NORMALS = (
    ("kermany-pediatric", "normal"),
    ("covid19-radiography", "normal"),
    ("ozturk-nih", "normal"),
    ("covid19-radiography", "covid19"),
)


# -- the lung fields ------------------------------------------------------------------------
def test_the_lung_fields_are_two_fields_of_a_quarter_of_the_film():
    fields, chest = lung_mask(128), chest_mask(128)
    assert 0.2 < fields.mean() < 0.33  # two lung fields on a PA film
    assert 0.32 < chest.mean() < 0.48  # with the mediastinum between them
    assert (chest | fields).sum() == chest.sum()  # the fields lie inside the chest region
    for half in (fields[:, :64], fields[:, 64:]):  # a right and a left field
        assert half.mean() > 0.15
    # corners, the border band, the neck and the abdomen are outside
    for region in (chest[:16, :16], chest[:16, -16:], chest[-16:, :], chest[:, :6], chest[:, -6:]):
        assert not region.any()


@pytest.mark.parametrize("pool,label", POOL_NORMALS)
def test_the_lung_fields_hold_the_dark_lungs_of_real_films(shared_data, pool, label):
    """On real films of every pool the fields are darker than the film as a whole (an
    equalised film averages 0.5), and most of their pixels are among the film's darkest
    40 % (chance: 40 %)."""
    prep = Preprocessing(size=128)
    fields = lung_mask(128)
    rows = [r for r in csv.DictReader((shared_data / pool / "manifest.csv").open())]
    rows = [r for r in rows if r["label"] == label][:25]
    inside, dark = [], []
    for row in rows:
        unit = prep.resize_unit(load_xray(shared_data / pool / row["path"]).render())[0]
        film = equalize_histogram(unit)
        inside.append(film[fields].mean())
        dark.append((film[fields] < 0.4).mean())
    assert np.mean(inside) < 0.45
    assert np.mean(dark) > 0.5


def test_letterboxed_films_have_no_lung_in_the_padding():
    prep = Preprocessing(size=128, resize="letterbox")
    mask = input_chest_mask(prep, (200, 100))  # a tall film: padding left and right
    top, left, bottom, right = prep.content_box(200, 100)
    assert not mask[:, :left].any() and not mask[:, right:].any()
    assert mask[top:bottom, left:right].mean() > 0.3
    assert np.array_equal(input_chest_mask(prep, (100, 100)), chest_mask(128))


# -- the share of a map in the lung fields --------------------------------------------------
def _one_cell(side: int, row: int, col: int) -> np.ndarray:
    cam = np.zeros((side, side), np.float32)
    cam[row, col] = 1.0
    return cam


def test_a_map_in_a_corner_is_flagged_and_one_in_the_lung_fields_is_not():
    mask = chest_mask(160)
    corners = [_one_cell(5, r, c) for r in (0, 4) for c in (0, 4)]
    for cam in corners:
        share = lung_share(cam, mask)
        assert share < 0.05
        warning = attention_warning(share)
        assert warning is not None and warning.code == EVIDENCE_OUTSIDE_LUNGS
        assert f"{share:.0%}" in warning.message
        assert "Normal" not in warning.message  # shown while the class is held back
    for cam in (_one_cell(5, 2, 1), _one_cell(5, 2, 3), _one_cell(5, 1, 1), _one_cell(5, 2, 2)):
        share = lung_share(cam, mask)  # right field, left field, right apex, mediastinum
        assert share > 0.5
        assert attention_warning(share) is None
    # as the viewer shows it: the map's floor removed, so an even floor does not count
    floored = _one_cell(5, 2, 1) + 3.0
    assert lung_share(floored, mask) == pytest.approx(lung_share(_one_cell(5, 2, 1), mask))
    assert np.isnan(lung_share(np.ones((5, 5), np.float32), mask))  # no place at all
    # nothing speaks for the class anywhere: no judgement, no warning
    assert np.isnan(lung_share(np.zeros((5, 5), np.float32), mask))
    assert attention_warning(float("nan")) is None
    assert attention_warning(None) is None


def test_the_threshold_is_below_an_even_spread():
    """Flagged means most of the evidence lies outside: less than half of what a map
    spread evenly over the film puts into the chest region."""
    assert chest_mask(224).mean() / 2 + 0.01 >= MIN_LUNG_SHARE


def _activations_on(classifier, index: int, cell: tuple[int, int], side: int = 5) -> np.ndarray:
    """Activations (1, D, side, side) whose map for class ``index`` is one hot cell (the
    head row's positive part there, zero elsewhere); 5 x 5 as chest-3class's at 160 px
    (the test model's own 2 x 2 grid has no corner apart from the lungs)."""
    weight = classifier.head[0][index]
    acts = np.zeros((1, weight.size, side, side), np.float32)
    acts[:, :, cell[0], cell[1]] = np.maximum(weight, 0)
    return acts


def test_lung_shares_weigh_the_predicted_class(test_classifier):
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    corner = np.concatenate(
        [_activations_on(test_classifier, 0, (0, 0)), _activations_on(test_classifier, 2, (0, 0))]
    )
    shares = lung_shares(test_classifier, corner, probs)
    assert shares.shape == (2,) and (shares < MIN_LUNG_SHARE).all()
    maps = test_classifier.class_maps(corner, [0, 2])
    assert maps.shape == (2, 5, 5) and maps[:, 0, 0].min() > 0
    # the other class's map is not the one weighed: its row puts nothing in that cell
    assert test_classifier.class_maps(corner, [1, 1])[:, 0, 0].max() < maps[:, 0, 0].min()


# -- the verdict ----------------------------------------------------------------------------
def test_the_verdict_withholds_an_answer_whose_evidence_lies_outside(test_classifier):
    probs = np.array([0.8, 0.15, 0.05])
    outside = decide(test_classifier, probs, lung_share=0.05)
    assert outside.prediction is None and outside.error is None
    assert outside.is_indeterminate and outside.indeterminate is not None
    assert outside.indeterminate.predicted == test_classifier.class_ids[0]
    assert EVIDENCE_OUTSIDE_LUNGS in outside.codes
    for share in (0.6, MIN_LUNG_SHARE, None, float("nan")):
        verdict = decide(test_classifier, probs, lung_share=share)
        assert verdict.prediction is not None and EVIDENCE_OUTSIDE_LUNGS not in verdict.codes
    # NaN probabilities stay an error, whatever the map
    broken = decide(test_classifier, np.array([np.nan, 0.5, 0.5]), lung_share=0.0)
    assert broken.error is not None and EVIDENCE_OUTSIDE_LUNGS not in broken.codes


def test_decide_all_checks_each_image_of_a_batch(test_classifier):
    probs = np.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]])
    acts = np.concatenate(
        [_activations_on(test_classifier, 0, (0, 0)), _activations_on(test_classifier, 0, (2, 1))]
    )
    shares = lung_shares(test_classifier, acts, probs)
    verdicts = decide_all(test_classifier, probs, None, ood=None, activations=acts)
    for share, verdict in zip(shares, verdicts, strict=True):
        flagged = share < MIN_LUNG_SHARE
        assert (EVIDENCE_OUTSIDE_LUNGS in verdict.codes) == flagged
        assert verdict.is_indeterminate == flagged
    assert EVIDENCE_OUTSIDE_LUNGS in verdicts[0].codes  # the corner
    assert verdicts[1].prediction is not None  # the right lung field
    # without activations there is no check
    plain = decide_all(test_classifier, probs, None, ood=None)
    assert all(v.prediction is not None for v in plain)


# -- the front doors ------------------------------------------------------------------------
@pytest.fixture
def every_answer_outside(monkeypatch):
    """A threshold no map can reach: every answer whose share was measured is flagged, so
    a front door that does not measure it (no activations) shows up."""
    monkeypatch.setattr(attention, "MIN_LUNG_SHARE", 1.01)


def _film(shared_data: Path) -> Path:
    return (
        shared_data
        / "ozturk-nih"
        / "normal"
        / sorted(p.name for p in (shared_data / "ozturk-nih" / "normal").iterdir())[0]
    )


def test_the_viewer_check_measures_every_image(test_classifier, shared_data, every_answer_outside):
    result = TrustCheck.of(test_classifier).classify(load_xray(_film(shared_data)))
    assert EVIDENCE_OUTSIDE_LUNGS in result.codes
    assert result.verdict is not None and result.verdict.is_indeterminate
    assert result.forward is not None and result.forward.activations is None  # not kept
    kept = TrustCheck.of(test_classifier).classify(load_xray(_film(shared_data)), True, True)
    assert kept.forward is not None and kept.forward.activations is not None


def test_the_batch_model_keeps_the_activations_of_its_pass(test_classifier, shared_data):
    """The folded torch copy (caught entering the pooling) and the classifier's own
    backend give the same lung shares."""
    films = sorted((shared_data / "ozturk-nih" / "normal").iterdir())[:3]
    tensors = [test_classifier.preprocess(load_xray(p)) for p in films]
    folded = BatchModel(test_classifier, batch_size=4)
    plain = BatchModel(test_classifier, optimise=False, batch_size=4)
    assert folded.private and not plain.private
    a, b = folded.classify_outputs(tensors), plain.classify_outputs(tensors)
    assert a.activations is not None and a.activations.shape[0] == 3
    sa = lung_shares(test_classifier, a.activations, a.probabilities)
    sb = lung_shares(test_classifier, b.activations, b.probabilities)
    assert np.allclose(sa, sb, atol=0.02)
    assert folded.classify_with_features(tensors)[1].shape == a.features.shape


def test_the_cli_json_row_carries_the_code(
    test_model_path, shared_data, every_answer_outside, capsys
):
    film = _film(shared_data)
    args = ["classify", str(film), "--model", str(test_model_path), "--device", "cpu", "--json"]
    main(args)
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert EVIDENCE_OUTSIDE_LUNGS in row["warnings"]
    assert row["prediction"] is None and row["indeterminate"] is True
    assert row["withheld_prediction"] is not None
