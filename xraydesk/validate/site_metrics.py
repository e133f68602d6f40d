"""The figures of a site validation, from the verdicts of its labelled images.

The metrics and their intervals are ``xraydesk.trainer.metrics``'s (the ones the model
card was made with): Wilson intervals for proportions, bootstrap intervals for AUCs,
equal-width bins for the ECE. They are computed over the images that got an answer
(a class), flagged or not; the shares flagged and withheld, and the accuracy of the
unflagged answers, say how much of that a user would have been warned about.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xraydesk.trainer import metrics as m
from xraydesk.validate.site_run import SUBGROUP_KEYS, SiteImage

MOST_WRONG = 8  # the most confidently wrong images shown
_TINY = 1e-12


def site_figures(images: Sequence[SiteImage], class_ids: Sequence[str]) -> dict[str, Any]:
    """Every figure of the report except the card comparison, JSON-ready."""
    k = len(class_ids)
    index = {cid: i for i, cid in enumerate(class_ids)}
    answered = [s for s in images if s.answered]
    y_true = np.array([index[s.image.label] for s in answered], dtype=np.int64)
    probs = np.array(
        [[s.row.probabilities[c] for c in class_ids] for s in answered], dtype=np.float64
    ).reshape(len(answered), k)
    n_all = len(images)
    flagged = sum(1 for s in images if s.row.warnings)
    withheld = n_all - len(answered)
    unflagged = [s for s in answered if not s.row.warnings]
    unflagged_right = sum(1 for s in unflagged if s.row.prediction == s.image.label)
    figures: dict[str, Any] = {
        "n_images": n_all,
        "n_per_class": {c: sum(1 for s in images if s.image.label == c) for c in class_ids},
        "n_answered": len(answered),
        "flagged": _share(flagged, n_all),
        "withheld": _share(withheld, n_all),
        "answered_unflagged": {
            **_share(len(unflagged), n_all),
            "accuracy": unflagged_right / len(unflagged) if unflagged else None,
            "accuracy_ci95": _ci(unflagged_right, len(unflagged)),
        },
        "warnings": _warning_counts(images),
    }
    if not answered:
        figures["metrics"] = None
        return figures
    # The card's own evaluation, on log-probabilities at temperature 1: softmax gives the
    # verdict's probabilities back, so nothing is calibrated or ranked twice.
    result = m.evaluate(np.log(np.clip(probs, _TINY, 1.0)), y_true, class_ids, curves=True)
    cm = np.array(result["confusion_matrix"], dtype=np.int64)
    for i, cid in enumerate(class_ids):
        row = result["per_class"][cid]
        tn = int(cm.sum() - cm[i, :].sum() - cm[:, i].sum() + cm[i, i])
        negatives = int(cm.sum() - cm[i, :].sum())
        # a class with no image at the site has no sensitivity (not 0: nothing was missed)
        has = row["support"] > 0
        row["sensitivity"] = row["recall"] if has else None
        row["sensitivity_ci95"] = row["recall_ci95"] if has else None
        row["specificity"] = tn / negatives if negatives else None
        row["specificity_ci95"] = _ci(tn, negatives)
    result["reliability"] = reliability_bins(probs, y_true)
    figures["metrics"] = result
    figures["subgroups"] = subgroup_rows(images)
    figures["most_confidently_wrong"] = most_confidently_wrong(answered)
    return figures


def reliability_bins(probs: np.ndarray, y_true: np.ndarray) -> list[dict[str, Any]]:
    """The reliability diagram's bins: the ECE's own (``metrics.ECE_BINS`` equal-width
    bins of the top probability, (i/B, (i+1)/B]), with their mean confidence and accuracy."""
    bins = m.ECE_BINS
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    where = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = where == b
        n = int(mask.sum())
        out.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "n": n,
                "confidence": float(confidence[mask].mean()) if n else None,
                "accuracy": float(correct[mask].mean()) if n else None,
            }
        )
    return out


def subgroup_rows(images: Sequence[SiteImage]) -> dict[str, list[dict[str, Any]]]:
    """Accuracy per subgroup value (only the subgroups some file names), answered images."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key in SUBGROUP_KEYS:
        values = sorted({s.groups[key] for s in images if key in s.groups})
        if not values:
            continue
        rows = []
        for value in values:
            group = [s for s in images if s.groups.get(key) == value]
            answered = [s for s in group if s.answered]
            right = sum(1 for s in answered if s.row.prediction == s.image.label)
            rows.append(
                {
                    "value": value,
                    "n": len(group),
                    "n_answered": len(answered),
                    "accuracy": right / len(answered) if answered else None,
                    "accuracy_ci95": _ci(right, len(answered)),
                    "flagged": sum(1 for s in group if s.row.warnings) / len(group),
                }
            )
        unknown = sum(1 for s in images if key not in s.groups)
        if unknown:
            rows.append({"value": "not stated", "n": unknown})
        out[key] = rows
    return out


def most_confidently_wrong(answered: Sequence[SiteImage], count: int = MOST_WRONG) -> list[dict]:
    """The wrong answers with the highest probability on the wrong class, most sure first."""
    wrong = [s for s in answered if s.row.prediction != s.image.label]
    wrong.sort(key=lambda s: (-(s.row.confidence or 0.0), s.image.name))
    return [
        {
            "name": s.image.name,
            "label": s.image.label,
            "prediction": s.row.prediction,
            "confidence": s.row.confidence,
            "warnings": s.row.warning_codes,
        }
        for s in wrong[:count]
    ]


def image_rows(images: Sequence[SiteImage]) -> list[dict[str, Any]]:
    """One row per image (file name relative to the site folder, never a header field)."""
    return [
        {
            "name": s.image.name,
            "site_label": s.image.site_label,
            "label": s.image.label,
            "prediction": s.row.prediction,
            "indeterminate": s.row.indeterminate,  # classified, no class named
            "probabilities": s.row.probabilities,
            "warnings": s.row.warning_codes,
            "withheld": not s.answered,
            "error": s.row.error,
            "subgroups": dict(s.groups),
        }
        for s in images
    ]


def _ci(successes: int, n: int) -> list[float] | None:
    """The 95 % Wilson interval as a JSON pair, None when n is 0."""
    interval = m.wilson_interval(successes, n)
    return None if interval is None else [interval[0], interval[1]]


def _share(count: int, total: int) -> dict[str, Any]:
    return {
        "n": count,
        "share": count / total if total else 0.0,
        "share_ci95": _ci(count, total),
    }


def _warning_counts(images: Sequence[SiteImage]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in images:
        for code in s.row.warning_codes:
            counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items()))
