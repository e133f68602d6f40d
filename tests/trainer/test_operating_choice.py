"""Choosing the operating rule and the temperature under shift from predictions.

Synthetic predictions with a known answer: which threshold reaches the target, when the
margin wins over the top probability, when no threshold can (confidence that does not
separate right from wrong), the fallback to the validation split and how it is marked,
and when a temperature fitted on held-out sources is applied or refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xraydesk.model.operating_rule import (
    HELD_OUT_SOURCES,
    MARGIN,
    TOP_PROBABILITY,
    VALIDATION_SPLIT,
)
from xraydesk.trainer.operating_choice import (
    MIN_ANSWERED,
    UNMET_COVERAGE,
    PoolPredictions,
    best_choice,
    choose_rule,
    choose_threshold,
    held_out_pools,
    rule_effect,
    shift_temperature,
)
from xraydesk.trust.calibration import calibration_limitations


def _rows(top: float, second: float, k: int = 3) -> np.ndarray:
    """A probability row with class 0 at ``top``, class 1 at ``second``, the rest shared."""
    row = np.full(k, (1.0 - top - second) / (k - 2))
    row[0], row[1] = top, second
    return row


def _set(groups: list[tuple[int, float, float, bool]]) -> tuple[np.ndarray, np.ndarray]:
    """(count, top, second, right) groups -> probabilities and labels (class 0 predicted;
    a wrong row is labelled class 1)."""
    probs, labels = [], []
    for count, top, second, right in groups:
        probs += [_rows(top, second)] * count
        labels += [0 if right else 1] * count
    return np.array(probs), np.array(labels)


# name, groups, max_error, measure, expected threshold, coverage, met
CASES = [
    (
        "separable",
        [(80, 0.9, 0.05, True), (20, 0.5, 0.3, False)],
        0.10,
        TOP_PROBABILITY,
        0.9,
        0.8,
        True,
    ),
    ("all-right-answers-all", [(50, 0.6, 0.3, True)], 0.10, TOP_PROBABILITY, 0.0, 1.0, True),
    (
        "few-errors-within-target",
        [(95, 0.8, 0.1, True), (5, 0.5, 0.3, False)],
        0.10,
        TOP_PROBABILITY,
        0.0,
        1.0,
        True,
    ),
    (
        "stricter-target-withholds",
        [(95, 0.8, 0.1, True), (5, 0.5, 0.3, False)],
        0.02,
        TOP_PROBABILITY,
        0.8,
        0.95,
        True,
    ),
    (
        "too-few-answered-to-claim",
        [(10, 0.95, 0.02, True), (90, 0.6, 0.3, False)],
        0.10,
        TOP_PROBABILITY,
        0.0,
        1.0,
        False,
    ),
    (
        "wrong-answers-most-confident",
        [(60, 0.5, 0.3, True), (40, 0.95, 0.03, False)],
        0.10,
        TOP_PROBABILITY,
        0.0,
        1.0,
        False,
    ),
    (
        "margin-separates",
        [(80, 0.45, 0.20, True), (20, 0.50, 0.48, False)],
        0.10,
        MARGIN,
        0.10,  # right rows: 0.45 against 0.35 (the third class); wrong ones: 0.02
        0.8,
        True,
    ),
]


@pytest.mark.parametrize(
    ("groups", "max_error", "measure", "threshold", "coverage", "met"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_choose_threshold(groups, max_error, measure, threshold, coverage, met) -> None:
    probs, labels = _set(groups)
    choice = choose_threshold(probs, labels, max_error, measure)
    assert choice.met is met
    assert choice.threshold == pytest.approx(threshold)
    assert choice.coverage == pytest.approx(coverage)
    answered = rule_effect(probs, labels, measure, choice.threshold)
    assert answered["coverage"] == pytest.approx(coverage)
    assert answered["accuracy"] == pytest.approx(choice.accuracy)
    if met:
        assert 1 - choice.accuracy <= max_error
    else:
        assert choice.coverage >= UNMET_COVERAGE


def test_margin_wins_when_the_top_probability_cannot_separate() -> None:
    probs, labels = _set([(80, 0.45, 0.20, True), (20, 0.50, 0.48, False)])
    assert not choose_threshold(probs, labels, 0.10, TOP_PROBABILITY).met
    choice = best_choice(probs, labels, 0.10)
    assert choice.measure == MARGIN and choice.met


def test_answered_floor() -> None:
    """At most MIN_ANSWERED images answered is not enough to claim a 10 % error rate."""
    probs, labels = _set([(MIN_ANSWERED - 1, 0.99, 0.0, True), (100, 0.5, 0.3, False)])
    assert not choose_threshold(probs, labels, 0.10).met


def _pool(name: str, groups, temperature: float = 1.0) -> PoolPredictions:
    probs, labels = _set(groups)
    return PoolPredictions(name, np.log(probs) * temperature, labels, temperature)


SEPARABLE = [(80, 0.9, 0.05, True), (20, 0.5, 0.3, False)]
INVERTED = [(60, 0.5, 0.3, True), (40, 0.95, 0.03, False)]


def test_rule_from_held_out_sources() -> None:
    pools = [_pool("pool-a", SEPARABLE), _pool("pool-b", SEPARABLE, temperature=2.0)]
    rule = choose_rule(pools)
    assert rule.chosen_from == HELD_OUT_SOURCES and rule.target_met
    assert rule.pools == ("pool-a", "pool-b") and rule.n == 200
    assert rule.threshold == pytest.approx(0.9) and rule.coverage == pytest.approx(0.8)
    assert set(rule.held_out) == {"pool-a", "pool-b"}
    assert rule.held_out["pool-a"]["accuracy"] == pytest.approx(1.0)
    assert "held-out sources: pool-a, pool-b, n = 200" in rule.line


def test_unreachable_held_out_falls_back_to_the_validation_split() -> None:
    probs, labels = _set(SEPARABLE)
    validation = (np.log(probs), labels, 1.0, ["pool-v"])
    rule = choose_rule([_pool("kermany", INVERTED)], validation)
    assert rule.chosen_from == VALIDATION_SPLIT and rule.target_met
    assert rule.pools == ("pool-v",) and rule.threshold == pytest.approx(0.9)
    assert "no threshold reached the target" in rule.note
    # what the validation rule does on the held-out source is kept
    assert rule.held_out["kermany"]["coverage"] == pytest.approx(0.4)
    assert rule.held_out["kermany"]["accuracy"] == pytest.approx(0.0)
    assert rule.held_out["kermany"]["wrong_confident_share"] == pytest.approx(0.4)
    assert "validation split (not held-out sources)" in rule.line


@pytest.mark.parametrize(
    ("pools", "why"),
    [
        (["kermany"], "a recipe of one pool has no source to hold out"),
        (["pool-a", "pool-b"], "no model of this recipe was trained without one of its pools"),
    ],
)
def test_without_held_out_runs_the_note_says_why(pools, why) -> None:
    """A one-pool recipe has no source to hold out; a recipe of several pools only had no
    leave-one-source-out run (the adult base of three pools was told the first)."""
    probs, labels = _set(SEPARABLE)
    rule = choose_rule([], (np.log(probs), labels, 1.0, pools))
    assert rule.chosen_from == VALIDATION_SPLIT and f"No held-out source predictions ({why})" in (
        rule.note
    )


def test_unreachable_without_validation_says_so() -> None:
    rule = choose_rule([_pool("kermany", INVERTED)])
    assert rule.chosen_from == HELD_OUT_SOURCES and not rule.target_met
    assert "(target not reached)" in rule.line


def _overconfident(seed: int, n: int = 600) -> PoolPredictions:
    """Logits three times too sharp: the true probabilities are softmax(logits / 3)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.5, size=(n, 3))
    p = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    return PoolPredictions(f"pool-{seed}", true_logits * 3.0, labels, 1.0)


def test_shift_temperature_applied_from_two_pools() -> None:
    temperature, account = shift_temperature([_overconfident(1), _overconfident(2)], 0.8)
    assert account["applied_from"] == "held-out sources"
    assert 2.4 < account["held_out_sources"]["fitted_factor"] < 3.6
    assert temperature == pytest.approx(0.8 * account["factor_applied"])
    held = account["held_out_sources"]
    assert held["ece_at_fitted_factor"] < held["ece_at_validation_temperature"]


def test_shift_temperature_never_leaves_the_range_a_card_may_carry() -> None:
    """A factor of about 3 on a validation temperature of 10 would give 30, past the 25 a
    card may carry (the card would then be refused): the validation temperature stays."""
    temperature, account = shift_temperature([_overconfident(1), _overconfident(2)], 10.0)
    assert temperature == 10.0 and account["applied_from"] == "validation split"
    assert "outside" in " ".join(account["not_applied_because"])


def test_shift_temperature_refused_from_one_pool_and_at_the_bound() -> None:
    temperature, account = shift_temperature([_pool("kermany", INVERTED)], 0.76)
    assert temperature == 0.76 and account["applied_from"] == "validation split"
    reasons = " ".join(account["not_applied_because"])
    assert "only 1 held-out pool" in reasons and "end of the search range" in reasons
    assert "held_out_sources" in account["ece_at_applied_temperature"]


def test_shift_temperature_without_held_out() -> None:
    probs, labels = _set(SEPARABLE)
    temperature, account = shift_temperature([], 1.2, (np.log(probs), labels))
    assert temperature == 1.2 and account["not_applied_because"] == [
        "no held-out source predictions"
    ]
    assert set(account["ece_at_applied_temperature"]) == {"validation_split"}


def test_held_out_calibration_is_a_card_limitation() -> None:
    _, account = shift_temperature([_pool("kermany", INVERTED)], 0.76)
    metrics = {"test": {"ece": 0.01}, "calibration_under_shift": account}
    notes = calibration_limitations(metrics)
    assert len(notes) == 1
    assert notes[0].startswith("Calibration on sources not seen in training is much worse")
    assert "held-out sources (kermany, n = 100" in notes[0]
    assert "fitted on the validation split" in notes[0]
    metrics["test"]["ece"] = 0.5  # no worse than the test split: nothing to say
    assert calibration_limitations(metrics) == []


def _write_fold(folder: Path, pool: str, n: int, class_ids=("a", "b", "c")) -> None:
    (folder / pool).mkdir(parents=True)
    np.savez_compressed(
        folder / pool / "predictions.npz",
        logits=np.zeros((n, 3), dtype=np.float32),
        labels=np.zeros(n, dtype=np.int64),
        class_ids=np.array(class_ids),
        temperature=np.float32(1.5),
    )


def test_held_out_pools_merge_folders(tmp_path: Path) -> None:
    """More folds just add pools; a pool in two folders counts once (the later folder's);
    another recipe's classes and missing folders are left out."""
    first, second = tmp_path / "first", tmp_path / "second"
    _write_fold(first, "kermany", 10)
    _write_fold(first, "other-recipe", 5, class_ids=("x", "y", "z"))
    _write_fold(second, "kermany", 20)
    _write_fold(second, "ozturk", 7)
    pools = held_out_pools([first, tmp_path / "missing", second], ["a", "b", "c"])
    assert [(p.pool, len(p.labels)) for p in pools] == [("kermany", 20), ("ozturk", 7)]
    assert pools[0].temperature == pytest.approx(1.5)
