"""Evaluation metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from xraydesk.trainer.metrics import (
    MIN_TEST_PER_CLASS,
    auc_intervals,
    choose_temperature,
    confusion_matrix,
    evaluate,
    expected_calibration_error,
    fit_temperature,
    format_with_interval,
    headline_metrics,
    precision_recall_f1,
    roc_auc,
    roc_curve,
    softmax,
    wilson_interval,
)

Z95 = 1.959963984540054


def test_confusion_matrix_precision_recall_f1():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    precision, recall, f1, support = precision_recall_f1(cm)
    # class 0: tp 2, predicted 2, true 3; class 1: tp 1, predicted 2, true 2; class 2: 1, 2, 1
    assert precision.tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert recall.tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    assert f1.tolist() == pytest.approx([0.8, 0.5, 2 / 3])
    assert support.tolist() == [3, 2, 1]


def test_precision_of_a_never_predicted_class_is_zero():
    cm = confusion_matrix(np.array([0, 1]), np.array([0, 0]), 2)
    precision, recall, f1, _ = precision_recall_f1(cm)
    assert precision.tolist() == [0.5, 0.0] and recall.tolist() == [1.0, 0.0] and f1[1] == 0.0


def test_auc_with_ties_and_roc_points():
    positive = np.array([1, 0, 1, 0], dtype=bool)
    scores = np.array([0.9, 0.9, 0.6, 0.2])
    # pairs (pos, neg): (0.9, 0.9) tie = 0.5, (0.9, 0.2) = 1, (0.6, 0.9) = 0, (0.6, 0.2) = 1
    assert roc_auc(positive, scores) == pytest.approx(2.5 / 4)
    assert roc_curve(positive, scores) == [(0.0, 0.0), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
    assert roc_auc(np.array([True, True]), np.array([0.1, 0.2])) is None
    assert roc_curve(np.array([True, True]), np.array([0.1, 0.2])) == []


def test_roc_curve_is_thinned_but_keeps_its_corners():
    rng = np.random.default_rng(0)
    positive = rng.random(1000) < 0.5
    points = roc_curve(positive, rng.random(1000), max_points=11)
    assert len(points) == 11 and points[0] == (0.0, 0.0) and points[-1] == (1.0, 1.0)


def test_expected_calibration_error_by_hand():
    # confidences 0.93, 0.81, 0.62, 0.57 land in four different tenth-bins
    probs = np.array([[0.93, 0.07], [0.19, 0.81], [0.62, 0.38], [0.43, 0.57]])
    y_true = np.array([0, 0, 0, 1])  # right, wrong, right, right
    expected = (abs(1 - 0.93) + abs(0 - 0.81) + abs(1 - 0.62) + abs(1 - 0.57)) / 4
    assert expected_calibration_error(probs, y_true, bins=10) == pytest.approx(expected)
    # one bin: |mean accuracy - mean confidence|
    one_bin = abs(0.75 - (0.93 + 0.81 + 0.62 + 0.57) / 4)
    assert expected_calibration_error(probs, y_true, bins=1) == pytest.approx(one_bin)


def test_temperature_recovers_an_overconfident_scale():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(size=(4000, 3)) * 1.5
    probs = softmax(true_logits)
    labels = np.array([rng.choice(3, p=p) for p in probs])
    fitted = fit_temperature(3.0 * true_logits, labels)  # a model three times too sure
    assert fitted == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(true_logits, labels) == pytest.approx(1.0, rel=0.1)


def test_evaluate_by_hand_with_pairwise_and_per_source():
    classes = ["normal", "bacterial", "viral"]
    logits = np.log(
        np.array(
            [
                [0.7, 0.2, 0.1],  # normal, right
                [0.2, 0.6, 0.2],  # bacterial, right
                [0.1, 0.3, 0.6],  # bacterial, wrong (viral)
                [0.1, 0.2, 0.7],  # viral, right
            ]
        )
    )
    y_true = np.array([0, 1, 1, 2])
    result = evaluate(logits, y_true, classes, sources=["a", "a", "b", "b"], curves=True)
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert result["per_class"]["viral"]["precision"] == pytest.approx(0.5)
    assert result["per_class"]["bacterial"]["recall"] == pytest.approx(0.5)
    # viral vs rest: scores viral 0.7 against 0.1, 0.2, 0.6 -> all above: AUC 1
    assert result["per_class"]["viral"]["auc"] == pytest.approx(1.0)
    # bacterial vs viral among those three: p(viral)/(p(b)+p(v)) = 0.25, 0.667 (b), 0.778 (v)
    assert result["pairwise_auc"]["bacterial_vs_viral"] == pytest.approx(1.0)
    assert result["pairwise_auc"]["normal_vs_bacterial"] == pytest.approx(1.0)
    assert result["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert set(result["per_source"]) == {"a", "b"}
    assert result["per_source"]["a"]["accuracy"] == 1.0
    assert result["per_source"]["b"]["accuracy"] == 0.5
    assert result["roc"]["viral"][0] == (0.0, 0.0) and result["roc"]["viral"][-1] == (1.0, 1.0)


def test_temperature_changes_confidence_not_predictions():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(50, 3)) * 4
    y_true = rng.integers(0, 3, 50)
    hot, cool = (
        evaluate(logits, y_true, ["a", "b", "c"], 1.0),
        evaluate(logits, y_true, ["a", "b", "c"], 5.0),
    )
    assert hot["confusion_matrix"] == cool["confusion_matrix"]
    assert hot["nll"] != cool["nll"]


# -- sample size and intervals (issue 19 #7) ---------------------------------------------------


def test_wilson_interval_closed_forms():
    """All right (12 of 12): the upper end is 1 and the lower n / (n + z^2), not 1.0 as
    the normal approximation says; none right mirrors it; k of n mirrors n - k of n."""
    low, high = wilson_interval(12, 12)
    assert high == 1.0 and low == pytest.approx(12 / (12 + Z95**2))
    low, high = wilson_interval(0, 12)
    assert low == 0.0 and high == pytest.approx(Z95**2 / (12 + Z95**2))
    a, b = wilson_interval(10, 12), wilson_interval(2, 12)
    assert a == pytest.approx((1 - b[1], 1 - b[0]))
    # centre (k + z^2/2) / (n + z^2), half-width z sqrt(k(n-k)/n + z^2/4) / (n + z^2)
    k, n = 83, 100
    centre = (k + Z95**2 / 2) / (n + Z95**2)
    half = Z95 * np.sqrt(k * (n - k) / n + Z95**2 / 4) / (n + Z95**2)
    assert wilson_interval(k, n) == pytest.approx((centre - half, centre + half))
    assert wilson_interval(0, 0) is None


def test_auc_bootstrap_is_seeded_contains_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)

    def data(n):
        y = rng.integers(0, 3, n)
        logits = rng.normal(size=(n, 3))
        logits[np.arange(n), y] += 1.5
        return softmax(logits), y

    probs, y = data(60)
    per_class, macro = auc_intervals(probs, y, 3)
    assert (per_class, macro) == auc_intervals(probs, y, 3)  # fixed seed: same interval
    for i, interval in enumerate(per_class):
        assert interval[0] <= roc_auc(y == i, probs[:, i]) <= interval[1]
    big_probs, big_y = data(2000)
    big_macro = auc_intervals(big_probs, big_y, 3)[1]
    assert big_macro[1] - big_macro[0] < (macro[1] - macro[0]) / 3
    one_class = auc_intervals(probs[y == 0], y[y == 0], 3)
    assert one_class == ([None, None, None], None)


def test_evaluate_stores_n_and_intervals_everywhere_a_metric_is():
    y = np.array([0] * 12 + [1] * 12)
    logits = np.zeros((24, 2))
    logits[:, 1] = np.r_[np.linspace(-2, 1, 12), np.linspace(-1, 2, 12)]
    m = evaluate(logits, y, ["a", "b"], sources=["p"] * 12 + ["q"] * 12)
    correct = int(np.trace(np.array(m["confusion_matrix"])))
    assert m["accuracy_ci95"] == pytest.approx(list(wilson_interval(correct, 24)))
    assert m["min_class_n"] == 12 and m["macro_auc_ci95"][0] < m["macro_auc"]
    for cid, row in m["per_class"].items():
        tp = m["confusion_matrix"][["a", "b"].index(cid)][["a", "b"].index(cid)]
        assert row["recall_ci95"] == pytest.approx(list(wilson_interval(tp, 12)))
        assert row["auc_ci95"][0] <= row["auc"] <= row["auc_ci95"][1]
    assert m["ci_method"]["level"] == 0.95
    assert m["per_source"]["p"]["accuracy_ci95"] is not None  # per pool too
    assert "accuracy_ci95" not in evaluate(logits, y, ["a", "b"], intervals=False)


def test_headline_for_new_and_old_cards():
    new = headline_metrics(
        {"n": 12, "accuracy": 10 / 12, "accuracy_ci95": [0.5, 0.9], "min_class_n": 4}
    )
    assert new["accuracy_ci95"] == [0.5, 0.9] and new["small"]
    old = headline_metrics(  # a card from before intervals: Wilson from n and accuracy
        {"n": 2778, "accuracy": 0.9071274298056156, "per_class": {"a": {"support": 657}}}
    )
    assert old["accuracy_ci95"] == pytest.approx(list(wilson_interval(2520, 2778)))
    assert old["min_class_n"] == 657 and not old["small"] and MIN_TEST_PER_CLASS == 30
    assert old["macro_auc_ci95"] is None
    assert headline_metrics({})["accuracy"] is None
    assert format_with_interval(0.907, [0.896, 0.917], percent=True) == (
        "90.7 % (95 % CI 89.6-91.7 %)"
    )
    assert format_with_interval(0.9, None) == "0.900" and format_with_interval(None, None) == "-"


def test_a_temperature_that_worsens_the_ece_is_not_applied():
    """12 validation images (seed 0) where the NLL-optimal temperature, 1.87, raises the
    ECE from 0.269 to 0.285: the model stays uncalibrated (temperature 1.0)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 12)
    logits = rng.normal(size=(12, 3)) * 2
    logits[np.arange(12), y] += 1.0
    fitted = fit_temperature(logits, y)
    assert fitted == pytest.approx(1.87, abs=0.01)
    temperature, info = choose_temperature(logits, y)
    assert temperature == 1.0 and not info["applied"]
    assert info["fitted_temperature"] == fitted
    assert info["validation_ece_fitted"] > info["validation_ece_uncalibrated"]


def test_a_temperature_that_lowers_the_ece_is_applied():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(400), y] += 1.0
    temperature, info = choose_temperature(logits * 4, y)  # four times overconfident
    assert info["applied"] and temperature == pytest.approx(4.0, rel=0.25)
    assert info["validation_ece_fitted"] < info["validation_ece_uncalibrated"]
