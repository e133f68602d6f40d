"""Evaluation metrics, in plain numpy so each one can be checked by hand.

Conventions: labels are class indices; the confusion matrix has true classes in rows
and predictions in columns; a precision or recall with an empty denominator is 0 (as
in scikit-learn); an AUC that cannot exist (only one class present) is None, never a
made-up 0.5. Pairwise AUCs answer questions like "bacterial or viral?" among the images
that are one of the two: the score is p(b) / (p(a) + p(b)), positives are class b.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from xraydesk.model.probabilities import softmax

ECE_BINS = 15
MAX_CURVE_POINTS = 101
# 95 % intervals: Wilson score for proportions (accuracy, recall, precision), a percentile
# bootstrap with a fixed seed for AUCs (same data, same interval).
CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CI_METHODS = {
    "level": CI_LEVEL,
    "proportions": "Wilson score interval",
    "auc": f"percentile bootstrap, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}",
}
# Below this many test images in a class, metrics are too uncertain to rank models by.
MIN_TEST_PER_CLASS = 30


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


def wilson_interval(successes: int, n: int, level: float = CI_LEVEL) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (Wilson 1927): honest near 0 and 1 and on
    small n, where the normal approximation gives [1.0, 1.0] for 12 out of 12. None for n 0."""
    if n <= 0:
        return None
    z = NormalDist().inv_cdf(0.5 + level / 2)  # stdlib: scipy's norm.ppf to 1e-15
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, no 1e-17
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _fast_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """``roc_auc`` from average ranks (the bootstrap calls it thousands of times)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy's ``rankdata``, in numpy: the
    light build has no scipy)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    new_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(new_group) - 1]
    return ranks


def auc_intervals(
    probs: np.ndarray, y_true: np.ndarray, n_classes: int
) -> tuple[list[tuple[float, float] | None], tuple[float, float] | None]:
    """Bootstrap intervals of each one-vs-rest AUC and of their mean (the macro AUC),
    from the same resamples."""
    probs, y_true = np.asarray(probs, dtype=np.float64), np.asarray(y_true)
    per_class: list[list[float]] = [[] for _ in range(n_classes)]
    macro: list[float] = []
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = len(y_true)
    present = [i for i in range(n_classes) if (y_true == i).any() and (y_true != i).any()]
    for _ in range(BOOTSTRAP_RESAMPLES if n >= 2 else 0):
        idx = rng.integers(0, n, n)
        y, p = y_true[idx], probs[idx]
        aucs = [_fast_auc(y == i, p[:, i]) for i in present]
        for i, auc in zip(present, aucs, strict=True):
            if auc is not None:
                per_class[i].append(auc)
        if aucs and all(a is not None for a in aucs):
            macro.append(float(np.mean(aucs)))
    return [_percentile(v) for v in per_class], _percentile(macro)


def _percentile(values: list[float]) -> tuple[float, float] | None:
    if len(values) < BOOTSTRAP_RESAMPLES / 2:
        return None
    tail = (1 - CI_LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


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

    temperature = float(np.exp(golden_section(nll, np.log(0.05), np.log(20.0))))
    return temperature if nll(np.log(temperature)) <= nll(0.0) else 1.0


def golden_section(
    f: Callable[[float], float], low: float, high: float, tol: float = 1e-5
) -> float:
    """The minimum of a unimodal ``f`` on [low, high] to ``tol`` (in numpy terms what
    scipy's bounded ``minimize_scalar`` does here; the light build has no scipy)."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2.0


def choose_temperature(logits: np.ndarray, y_true: np.ndarray) -> tuple[float, dict[str, Any]]:
    """The temperature to ship, and why: the NLL-fitted one only when it also lowers the
    validation calibration error; otherwise 1.0 (uncalibrated), since a temperature that
    makes the stated confidence worse is not a calibration."""
    logits = np.asarray(logits, dtype=np.float64)
    fitted = fit_temperature(logits, y_true)
    before = expected_calibration_error(softmax(logits, 1.0), y_true)
    after = expected_calibration_error(softmax(logits, fitted), y_true)
    applied = fitted != 1.0 and after < before
    return (fitted if applied else 1.0), {
        "fitted_temperature": fitted,
        "applied": applied,
        "validation_ece_uncalibrated": before,
        "validation_ece_fitted": after,
        "rule": "applied only when it lowers the validation ECE",
    }


def evaluate(
    logits: np.ndarray,
    y_true: np.ndarray,
    class_ids: Sequence[str],
    temperature: float = 1.0,
    sources: Sequence[str] | None = None,
    curves: bool = False,
    intervals: bool = True,
) -> dict[str, Any]:
    """Every metric the model card and the wizard show, JSON-ready.

    With ``sources`` the same metrics are added per pool; with ``curves`` the ROC points
    (one-vs-rest per class) are included; ``intervals`` adds 95 % intervals (``*_ci95``:
    Wilson for accuracy, recall and precision, bootstrap for AUCs) and ``min_class_n``.
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
    if intervals:
        _add_intervals(result, cm, probs, y_true)
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
                    logits[sources == pool],
                    y_true[sources == pool],
                    class_ids,
                    temperature,
                    intervals=intervals,
                )
                for pool in pools
            }
    return result


def _add_intervals(
    result: dict[str, Any], cm: np.ndarray, probs: np.ndarray, y_true: np.ndarray
) -> None:
    """The 95 % intervals and the smallest class's test count, beside the metrics."""
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    auc_ci, macro_auc_ci = auc_intervals(probs, y_true, len(cm))
    for i, metrics in enumerate(result["per_class"].values()):
        tp = int(cm[i, i])
        metrics["recall_ci95"] = _pair(wilson_interval(tp, int(support[i])))
        metrics["precision_ci95"] = _pair(wilson_interval(tp, int(predicted[i])))
        metrics["auc_ci95"] = _pair(auc_ci[i])
    result["accuracy_ci95"] = _pair(wilson_interval(int(np.trace(cm)), len(y_true)))
    result["macro_auc_ci95"] = _pair(macro_auc_ci)
    result["min_class_n"] = int(support.min()) if len(support) else 0
    result["ci_method"] = dict(CI_METHODS)


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def headline_metrics(test: dict[str, Any]) -> dict[str, Any]:
    """The headline of a card's test metrics with sample size and 95 % intervals, for
    every place a metric is shown. Cards made before intervals were stored get the
    accuracy interval from their n (Wilson needs only the count) and no AUC interval."""
    n = int(test.get("n") or 0)
    acc = test.get("accuracy")
    acc_ci = test.get("accuracy_ci95")
    if acc_ci is None and acc is not None and n:
        acc_ci = _pair(wilson_interval(round(float(acc) * n), n))
    per_class = test.get("per_class") or {}
    supports = [int(m.get("support", 0)) for m in per_class.values()]
    min_class = test.get("min_class_n", min(supports) if supports else None)
    return {
        "n": n,
        "accuracy": acc,
        "accuracy_ci95": acc_ci,
        "macro_auc": test.get("macro_auc"),
        "macro_auc_ci95": test.get("macro_auc_ci95"),
        "min_class_n": min_class,
        "small": min_class is not None and min_class < MIN_TEST_PER_CLASS,
    }


def format_with_interval(
    value: float | None, interval: Sequence[float] | None, percent: bool = False
) -> str:
    """ "0.907 (95 % CI 0.896-0.917)", or "90.7 % (95 % CI 89.6-91.7 %)"; "-" for None."""
    if value is None:
        return "-"
    if percent:
        text = f"{value:.1%}".replace("%", " %")
        if interval is None:
            return text
        return f"{text} (95 % CI {interval[0] * 100:.1f}-{interval[1] * 100:.1f} %)"
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} (95 % CI {interval[0]:.3f}-{interval[1]:.3f})"


def _pairwise_auc(probs: np.ndarray, y_true: np.ndarray, class_ids: Sequence[str]) -> dict:
    out = {}
    for a in range(len(class_ids)):
        for b in range(a + 1, len(class_ids)):
            mask = (y_true == a) | (y_true == b)
            pa, pb = probs[mask, a], probs[mask, b]
            score = pb / np.clip(pa + pb, 1e-300, None)
            out[f"{class_ids[a]}_vs_{class_ids[b]}"] = roc_auc(y_true[mask] == b, score)
    return out
