"""Evaluation metrics, in plain numpy so each one can be checked by hand.

Conventions: labels are class indices; the confusion matrix has true classes in rows
and predictions in columns; a precision or recall with an empty denominator is 0 (as
in scikit-learn); an AUC that cannot exist (only one class present) is None, never a
made-up 0.5. Pairwise AUCs answer questions like "bacterial or viral?" among the images
that are one of the two: the score is p(b) / (p(a) + p(b)), positives are class b.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

ECE_BINS = 15
MAX_CURVE_POINTS = 101


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def roc_curve(
    positive: np.ndarray, scores: np.ndarray, max_points: int | None = MAX_CURVE_POINTS
) -> list[tuple[float, float]]:
    """(false positive rate, true positive rate) from (0, 0) to (1, 1), one point per threshold,
    thinned to at most ``max_points`` (the corners always kept)."""
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return []
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], positive[order]
    last_of_threshold = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tpr = np.r_[0.0, np.cumsum(p)[last_of_threshold] / n_pos]
    fpr = np.r_[0.0, np.cumsum(~p)[last_of_threshold] / n_neg]
    points = list(zip(fpr.tolist(), tpr.tolist(), strict=True))
    if max_points is not None and len(points) > max_points:
        keep = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
        points = [points[i] for i in keep]
    return points


def expected_calibration_error(
    probs: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    # bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins bin 0
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.sum() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece / len(y_true))


def negative_log_likelihood(probs: np.ndarray, y_true: np.ndarray) -> float:
    picked = np.asarray(probs, dtype=np.float64)[np.arange(len(y_true)), np.asarray(y_true)]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()) if len(y_true) else 0.0


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T) (Guo et al. 2017).

    One number, so it changes confidence but never the ranking or the predicted class.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        return negative_log_likelihood(softmax(logits, float(np.exp(log_t))), y_true)

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    temperature = float(np.exp(best.x))
    return temperature if nll(np.log(temperature)) <= nll(0.0) else 1.0


def evaluate(
    logits: np.ndarray,
    y_true: np.ndarray,
    class_ids: Sequence[str],
    temperature: float = 1.0,
    sources: Sequence[str] | None = None,
    curves: bool = False,
) -> dict[str, Any]:
    """Every metric the model card and the wizard show, JSON-ready.

    With ``sources`` the same metrics are added per pool; with ``curves`` the ROC points
    (one-vs-rest per class) are included.
    """
    logits = np.asarray(logits, dtype=np.float64).reshape(len(y_true), len(class_ids))
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = softmax(logits, temperature)
    y_pred = probs.argmax(axis=1)
    k = len(class_ids)
    cm = confusion_matrix(y_true, y_pred, k)
    precision, recall, f1, support = precision_recall_f1(cm)
    per_class = {}
    aucs = []
    for i, cid in enumerate(class_ids):
        auc = roc_auc(y_true == i, probs[:, i])
        per_class[cid] = {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "auc": auc,
        }
        if auc is not None:
            aucs.append(auc)
    present = support > 0
    result: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": accuracy(y_true, y_pred),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "macro_auc": float(np.mean(aucs)) if aucs else None,
        "ece": expected_calibration_error(probs, y_true),
        "nll": negative_log_likelihood(probs, y_true),
        "temperature": float(temperature),
        "per_class": per_class,
        "pairwise_auc": _pairwise_auc(probs, y_true, class_ids) if k > 2 else {},
        "confusion_matrix": cm.tolist(),
        "classes": list(class_ids),
    }
    if curves:
        result["roc"] = {
            cid: roc_curve(y_true == i, probs[:, i]) for i, cid in enumerate(class_ids)
        }
    if sources is not None:
        sources = np.asarray(list(sources))
        pools = sorted(set(sources.tolist()))
        if len(pools) > 1:
            result["per_source"] = {
                pool: evaluate(
                    logits[sources == pool], y_true[sources == pool], class_ids, temperature
                )
                for pool in pools
            }
    return result


def _pairwise_auc(probs: np.ndarray, y_true: np.ndarray, class_ids: Sequence[str]) -> dict:
    out = {}
    for a in range(len(class_ids)):
        for b in range(a + 1, len(class_ids)):
            mask = (y_true == a) | (y_true == b)
            pa, pb = probs[mask, a], probs[mask, b]
            score = pb / np.clip(pa + pb, 1e-300, None)
            out[f"{class_ids[a]}_vs_{class_ids[b]}"] = roc_auc(y_true[mask] == b, score)
    return out
