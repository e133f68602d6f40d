"""Evaluation metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from xraydesk.trainer.metrics import (
    confusion_matrix,
    evaluate,
    expected_calibration_error,
    fit_temperature,
    precision_recall_f1,
    roc_auc,
    roc_curve,
    softmax,
)


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
