"""The out-of-distribution score and where it lives (issue 14): fitted statistics, cards
with and without them, cards from before they existed, per-pool calibration notes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO_ROOT
from tests.xrays import xray_from_pixels
from xraydesk.classifier import Classifier
from xraydesk.model.card import ModelCard
from xraydesk.trust.calibration import add_calibration_limitations, calibration_limitations
from xraydesk.trust.check import TrustCheck
from xraydesk.trust.codes import OUT_OF_DISTRIBUTION
from xraydesk.trust.ood import (
    NO_STATISTICS,
    OOD_KEY,
    PASS_QUANTILE,
    OODStatistics,
    describe,
    fit,
)


def _clusters(rng: np.random.Generator, n: int, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 3, n)
    centres = np.stack([np.eye(dim)[k] * 6 for k in range(3)])
    mixing = rng.normal(size=(dim, dim)) * 0.3 + np.eye(dim)
    return centres[labels] + rng.normal(size=(n, dim)) @ mixing, labels


@pytest.fixture(scope="module")
def stats() -> OODStatistics:
    rng = np.random.default_rng(0)
    train, labels = _clusters(rng, 3000)
    val, _ = _clusters(rng, 1000)
    return fit(train, labels, val, 3, rank=16)


def test_threshold_lets_97_percent_of_validation_through(stats):
    fresh, _ = _clusters(np.random.default_rng(1), 4000)
    passed = np.mean(stats.score(fresh) <= stats.threshold)
    assert 0.955 <= passed <= 0.985
    assert stats.details["validation_pass_rate"] == PASS_QUANTILE == 0.97
    assert 0 <= stats.details["shrinkage"] <= 1


def test_far_features_are_flagged_and_near_ones_are_not(stats):
    rng = np.random.default_rng(2)
    shifted = _clusters(rng, 200)[0] + 8 * rng.normal(size=(1, 64))
    assert np.all(stats.score(shifted) > stats.threshold)
    warning = stats.warning(float(stats.score(shifted[:1])[0]))
    assert warning is not None and warning.code == OUT_OF_DISTRIBUTION
    assert stats.warning(float(stats.threshold) * 0.5) is None
    assert stats.warning(float("nan")) is not None  # NaN is never "in distribution"


def test_statistics_round_trip_through_a_card(stats, tmp_path, test_model_path):
    card = ModelCard.read(test_model_path)
    stats.store(card)
    card.write(tmp_path / "with-stats.json")
    text = (tmp_path / "with-stats.json").read_text()
    assert len(text) < 200_000  # rank-k storage keeps the card small
    again = OODStatistics.from_card(ModelCard.read(tmp_path / "with-stats.json"))
    assert again is not None and again.threshold == pytest.approx(stats.threshold)
    x = _clusters(np.random.default_rng(3), 50)[0]
    assert np.allclose(again.score(x), stats.score(x), rtol=1e-5)
    assert "threshold" in describe(ModelCard.read(tmp_path / "with-stats.json"))


def test_a_card_without_statistics_loads_and_says_so(test_model_path):
    card = ModelCard.read(test_model_path)
    assert OOD_KEY not in card.training
    assert OODStatistics.from_card(card) is None
    assert describe(card) == NO_STATISTICS and "no out-of-distribution warning" in NO_STATISTICS


def test_a_card_from_before_this_change_still_loads_and_classifies(tmp_path, test_classifier):
    """The test model's card as written before issue 14 (no ``ood`` anywhere): it loads,
    classifies, is gated, and never gets an out_of_distribution warning."""
    data = json.loads(Path(test_classifier.card.path).read_text())
    assert "ood" not in json.dumps(data["training"])
    checker = TrustCheck(test_classifier)
    assert checker.ood is None
    rng = np.random.default_rng(4)
    result = checker.classify(xray_from_pixels(rng.random((200, 200)) * 255))
    assert result.ood_score is None and OUT_OF_DISTRIBUTION not in result.codes
    assert "not_chest" in result.codes


def test_damaged_statistics_are_no_statistics(stats, test_model_path):
    card = ModelCard.read(test_model_path)
    stats.store(card)
    card.training[OOD_KEY]["arrays"]["components"]["shape"] = [3, 3]
    assert OODStatistics.from_card(card) is None
    assert "unreadable" in describe(card)


def test_bundled_models_carry_statistics_and_flag_a_non_radiograph():
    for name in ("chest-3class", "pediatric-pneumonia"):
        card = ModelCard.read(REPO_ROOT / "models" / f"{name}.json")
        stats = OODStatistics.from_card(card)
        assert stats is not None, name
        assert stats.means.shape == (len(card.class_ids), 2048)
        assert stats.details["validation_pass_rate"] == PASS_QUANTILE
    checker = TrustCheck(Classifier.load(REPO_ROOT / "models" / "chest-3class.json", "cpu"))
    yy, xx = np.mgrid[0:224, 0:224]
    board = checker.classify(xray_from_pixels(((yy // 28 + xx // 28) % 2) * 255.0))
    assert board.ood_score is not None and board.ood_score > checker.ood.threshold
    assert {"not_chest", OUT_OF_DISTRIBUTION} <= set(board.codes)


def test_pool_calibration_much_worse_than_overall_is_a_limitation():
    metrics = {
        "test": {
            "ece": 0.01,
            "per_source": {
                "a": {"n": 500, "ece": 0.02},
                "b": {"n": 100, "ece": 0.15},
                "tiny": {"n": 5, "ece": 0.4},
            },
        }
    }
    notes = calibration_limitations(metrics)
    assert len(notes) == 1 and "on b:" in notes[0] and "0.150" in notes[0]
    limitations = ["something else"]
    add_calibration_limitations(limitations, metrics)
    add_calibration_limitations(limitations, metrics)  # twice: still one note
    assert limitations == ["something else", notes[0]]
    card = ModelCard.read(REPO_ROOT / "models" / "chest-3class.json")
    assert any("covid-cxnet" in x and "calibration" in x.lower() for x in card.limitations)
