"""The figures a reader wants from a model card's test metrics: per class, sensitivity
and specificity; per pool (source), accuracy. Read from the card's stored metrics
(``metrics["test"]``), so every card made by the trainer has them; older cards without
a confusion matrix or per-pool results give fewer rows, never an error. No Qt here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClassFigure:
    class_id: str
    name: str
    support: int  # test images of this class
    sensitivity: float | None  # recall: of this class, the share called this class
    specificity: float | None  # of the other classes, the share not called this class


@dataclass(frozen=True)
class PoolFigure:
    pool: str
    n: int
    accuracy: float | None


def class_figures(
    test: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> list[ClassFigure]:
    """Per-class sensitivity and specificity, from the confusion matrix when the card has
    one (rows true, columns predicted), else sensitivity from the stored recall."""
    names = names or {}
    per_class = test.get("per_class") or {}
    matrix = test.get("confusion_matrix")
    order: Sequence[str] = test.get("classes") or list(per_class)
    figures = []
    for k, cid in enumerate(order):
        stats = per_class.get(cid) or {}
        sens = stats.get("recall")
        spec = None
        support = int(stats.get("support", 0) or 0)
        if matrix and k < len(matrix):
            total = sum(sum(row) for row in matrix)
            row_k = sum(matrix[k])
            predicted_k = sum(row[k] for row in matrix if k < len(row))
            false_pos = predicted_k - matrix[k][k]
            negatives = total - row_k
            spec = (negatives - false_pos) / negatives if negatives else None
            sens = matrix[k][k] / row_k if row_k else None
            support = row_k
        figures.append(ClassFigure(cid, names.get(cid, cid), support, _num(sens), _num(spec)))
    return figures


def pool_figures(test: Mapping[str, Any]) -> list[PoolFigure]:
    """Accuracy on each pool's test images (largest pool first)."""
    pools = test.get("per_source") or {}
    rows = [
        PoolFigure(str(pool), int(stats.get("n", 0) or 0), _num(stats.get("accuracy")))
        for pool, stats in pools.items()
        if isinstance(stats, Mapping)
    ]
    return sorted(rows, key=lambda r: -r.n)


def run_options(settings: Mapping[str, Any], details: Mapping[str, Any] | None = None) -> list[str]:
    """The recipe candidates a run used beyond the plain recipe (weight averaging, mixup,
    CutMix), one line each, from the card's ``training["settings"]`` (and ``["details"]``:
    whether the shipped epoch was averaged); [] when none, or for older cards."""
    lines = []
    decay = _num(settings.get("ema_decay")) or 0.0
    if decay > 0:
        start = _num(settings.get("ema_start")) or 0.0
        average = (details or {}).get("weight_average") or {}
        kept = (
            "the best epoch came before the average began, so its live weights were shipped"
            if average.get("shipped") is False
            else "the averaged weights were validated, chosen and shipped"
        )
        lines.append(
            f"Weight averaging: EMA of the weights (decay {decay:g}) from {start:.0%} of the "
            f"run's steps on, batch-norm statistics averaged with them; {kept}."
        )
    mixes = [
        f"{name} (alpha {alpha:g})"
        for name, key in (("mixup", "mixup_alpha"), ("CutMix", "cutmix_alpha"))
        if (alpha := _num(settings.get(key)) or 0.0) > 0
    ]
    if mixes:
        share = _num(settings.get("mix_p"))
        lines.append(
            f"Batch mixing: {' or '.join(mixes)} on {1.0 if share is None else share:.0%} of "
            "the training batches, with soft targets."
        )
    return lines


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def percent(value: float | None) -> str:
    """0.9406 -> "94.1 %"; "–" when unknown."""
    return "–" if value is None else f"{value * 100:.1f} %"
