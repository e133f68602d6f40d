"""Choosing a model card's operating rule and its temperature under shift, from predictions.

The rule (``model.operating_rule``) is the confidence below which the model names no
class. It is chosen where it will be judged: on held-out sources (the leave-one-source-
out runs of ``trainer.held_out``: models trained without a pool, predicting all of it),
because a threshold chosen on the model's own validation split answers nearly everything
there. The lowest threshold whose answered images are at most ``max_error`` wrong (with
at least ``MIN_ANSWERED`` of them) is chosen, for the top probability and for the margin,
and the measure that answers more images wins. When no threshold reaches the target on
the held-out sources, the rule is chosen on the validation split and says so; a user's
own model, which has no held-out sources, always gets its rule from its validation split.

The temperature under shift (``shift_temperature``) is ``fit_temperature`` on the held-
out predictions, each pool's logits first divided by its own model's validation
temperature, so the fitted number is a factor: how much softer a model must be on a
hospital it has not seen than on its own validation split. The card's temperature becomes
its validation temperature times the factor, when the factor is estimated from at least
``MIN_SHIFT_POOLS`` pools, lies inside the search range (at an end, the fit found no
calibrated information in the logits at all) and lowers the held-out ECE. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk.model.card import TEMPERATURE_RANGE
from xraydesk.model.operating_rule import (
    HELD_OUT_SOURCES,
    MEASURES,
    TOP_PROBABILITY,
    VALIDATION_SPLIT,
    OperatingRule,
    confidence_of,
)
from xraydesk.trainer.metrics import expected_calibration_error, fit_temperature, softmax

# The default target: at most 8 % of answered images wrong, i.e. answered accuracy at least
# 0.92, what the verdict must reach on hospitals the model never saw.
MAX_ERROR = 0.08
MIN_ANSWERED = 30  # fewer answered images cannot show an error rate near 8 %
UNMET_COVERAGE = 0.5  # target out of reach: the most accurate rule answering at least this
MIN_SHIFT_POOLS = 2  # one held-out pool is one shift, not an estimate for any hospital
_FACTOR_RANGE = (0.05, 20.0)  # fit_temperature's search range
CONFIDENT = 0.9  # "wrong at p >= 0.9": the confidently wrong answers a rule must catch
PREDICTIONS_FILE = "predictions.npz"  # as trainer.held_out writes it


@dataclass(frozen=True)
class PoolPredictions:
    """One held-out pool: its images' raw logits and labels, and the validation
    temperature of the model that made them."""

    pool: str
    logits: np.ndarray
    labels: np.ndarray
    temperature: float = 1.0

    def probabilities(self, factor: float = 1.0) -> np.ndarray:
        return softmax(np.asarray(self.logits, dtype=np.float64), self.temperature * factor)


def load_held_out(folder: Path, class_ids: Sequence[str]) -> list[PoolPredictions]:
    """Every ``POOL/predictions.npz`` under a leave-one-source-out folder whose classes
    are ``class_ids`` in that order (others are another recipe's: left out)."""
    pools = []
    for path in sorted(Path(folder).glob(f"*/{PREDICTIONS_FILE}")):
        with np.load(path) as data:
            if [str(c) for c in data["class_ids"]] != list(class_ids):
                continue
            pools.append(
                PoolPredictions(
                    path.parent.name,
                    data["logits"].astype(np.float64),
                    data["labels"].astype(np.int64),
                    float(data["temperature"]),
                )
            )
    return pools


def held_out_pools(folders: Sequence[Path], class_ids: Sequence[str]) -> list[PoolPredictions]:
    """Every held-out pool's predictions in several such folders (missing ones are
    skipped); a pool found in several counts once, the folder listed last winning."""
    found: dict[str, PoolPredictions] = {}
    for folder in folders:
        if Path(folder).is_dir():
            for pool in load_held_out(folder, class_ids):
                found[pool.pool] = pool
    return [found[k] for k in sorted(found)]


@dataclass(frozen=True)
class Choice:
    """A threshold on one measure and what it does on the images it was chosen on."""

    measure: str
    threshold: float
    coverage: float
    accuracy: float
    met: bool


def sweep(confidence: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, ...]:
    """For every distinct confidence as a threshold (the lowest replaced by 0, "answer
    all"): the threshold, the number of images answered (confidence >= threshold) and how
    many of those are right."""
    order = np.argsort(confidence, kind="stable")
    c, r = confidence[order], right[order].astype(np.int64)
    first = np.r_[0, np.flatnonzero(np.diff(c)) + 1]
    right_from = np.cumsum(r[::-1])[::-1]
    thresholds = c[first].astype(np.float64)
    thresholds[0] = 0.0
    return thresholds, len(c) - first, right_from[first]


def choose_threshold(
    probabilities: np.ndarray,
    labels: np.ndarray,
    max_error: float = MAX_ERROR,
    measure: str = TOP_PROBABILITY,
) -> Choice:
    """The lowest threshold of ``measure`` at which at most ``max_error`` of the answered
    images (at least ``MIN_ANSWERED``) are wrong; out of reach, the most accurate one that
    still answers ``UNMET_COVERAGE`` of the images (``met`` False)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    if n == 0:
        return Choice(measure, 0.0, 0.0, 0.0, False)
    right = probs.argmax(axis=1) == labels
    thresholds, answered, correct = sweep(confidence_of(probs, measure), right)
    accuracy = correct / answered
    ok = (answered >= MIN_ANSWERED) & (1.0 - accuracy <= max_error + 1e-12)
    if ok.any():
        i = int(np.flatnonzero(ok)[0])
        met = True
    else:
        wide = np.flatnonzero(answered >= UNMET_COVERAGE * n)
        i = int(wide[np.argmax(accuracy[wide])])
        met = False
    return Choice(measure, float(thresholds[i]), answered[i] / n, float(accuracy[i]), met)


def best_choice(probabilities: np.ndarray, labels: np.ndarray, max_error: float) -> Choice:
    """Top probability or margin: of those reaching the target, the one answering more
    images (the top probability on a tie or when neither reaches it)."""
    choices = [choose_threshold(probabilities, labels, max_error, m) for m in MEASURES]
    reached = [c for c in choices if c.met]
    if not reached:
        return choices[0]
    return max(reached, key=lambda c: (c.coverage, c.measure == TOP_PROBABILITY))


def rule_effect(
    probabilities: np.ndarray, labels: np.ndarray, measure: str, threshold: float
) -> dict[str, Any]:
    """What a rule does on some images: how many, the share answered, the accuracy of the
    answered ones, and the share of all images answered wrongly at p >= 0.9."""
    probs = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    answered = confidence_of(probs, measure) >= threshold
    right = probs.argmax(axis=1) == labels
    confident_wrong = answered & ~right & (probs.max(axis=1) >= CONFIDENT)
    k = int(answered.sum())
    return {
        "n": n,
        "coverage": k / n if n else 0.0,
        "accuracy": float(right[answered].mean()) if k else None,
        "wrong_confident_share": float(confident_wrong.sum() / n) if n else 0.0,
    }


def _pooled(pools: Sequence[PoolPredictions], factor: float) -> tuple[np.ndarray, np.ndarray]:
    probs = np.concatenate([p.probabilities(factor) for p in pools])
    return probs, np.concatenate([p.labels for p in pools])


def validation_rule(
    logits: np.ndarray,
    labels: np.ndarray,
    temperature: float,
    pools: Sequence[str],
    max_error: float = MAX_ERROR,
    note: str = "",
) -> OperatingRule:
    """The rule of a model from its own validation split (a user's model; or a bundled
    one whose held-out sources reach no threshold), marked as such."""
    labels = np.asarray(labels)
    if len(labels) < MIN_ANSWERED:  # too few to choose by: answer every image, and say so
        return OperatingRule(
            threshold=0.0,
            max_error=max_error,
            chosen_from=VALIDATION_SPLIT,
            pools=tuple(pools),
            n=len(labels),
            target_met=False,
            note=f"Only {len(labels)} validation images: too few to choose a threshold by "
            f"(at least {MIN_ANSWERED}); the model answers every image. {note}".rstrip(),
        )
    probs = softmax(np.asarray(logits, dtype=np.float64), temperature)
    choice = best_choice(probs, labels, max_error)
    return OperatingRule(
        threshold=choice.threshold,
        measure=choice.measure,
        max_error=max_error,
        chosen_from=VALIDATION_SPLIT,
        pools=tuple(pools),
        n=len(labels),
        coverage=choice.coverage,
        accuracy=choice.accuracy,
        target_met=choice.met,
        note=note,
    )


def choose_rule(
    held_out: Sequence[PoolPredictions],
    validation: tuple[np.ndarray, np.ndarray, float, Sequence[str]] | None = None,
    factor: float = 1.0,
    max_error: float = MAX_ERROR,
) -> OperatingRule:
    """The card's rule from held-out sources (probabilities at each model's temperature
    times ``factor``, the shift factor applied to the card), falling back to
    ``validation`` (logits, labels, temperature, pools) when they reach no threshold."""
    names = tuple(p.pool for p in held_out)
    if held_out:
        probs, labels = _pooled(held_out, factor)
        choice = best_choice(probs, labels, max_error)
        if choice.met or validation is None:
            return OperatingRule(
                threshold=choice.threshold,
                measure=choice.measure,
                max_error=max_error,
                chosen_from=HELD_OUT_SOURCES,
                pools=names,
                n=len(labels),
                coverage=choice.coverage,
                accuracy=choice.accuracy,
                target_met=choice.met,
                held_out=_per_pool(held_out, factor, choice.measure, choice.threshold),
            )
        note = (
            f"On the held-out sources ({', '.join(names)}, n = {len(labels)}) no threshold "
            f"reached the target: the most accurate rule answering at least "
            f"{UNMET_COVERAGE:.0%} of their images had accuracy {choice.accuracy:.3f}, so "
            "confidence does not separate right from wrong answers there; the threshold "
            "comes from the validation split, and held_out says what it does on them."
        )
    elif validation is None:
        raise ValueError("no predictions to choose an operating rule from")
    else:
        why = (
            "a recipe of one pool has no source to hold out"
            if len(set(validation[3])) < 2
            else "no model of this recipe was trained without one of its pools"
        )
        note = (
            f"No held-out source predictions ({why}): the threshold comes from the "
            "validation split, so on images from other hospitals expect more wrong answers "
            "among those given."
        )
    logits, labels, temperature, pools = validation
    rule = validation_rule(logits, labels, temperature, pools, max_error, note)
    if not held_out:
        return rule
    per_pool = _per_pool(held_out, factor, rule.measure, rule.threshold)
    return OperatingRule(**{**rule.__dict__, "held_out": per_pool})


def _per_pool(
    pools: Sequence[PoolPredictions], factor: float, measure: str, threshold: float
) -> dict[str, dict[str, Any]]:
    return {
        p.pool: rule_effect(p.probabilities(factor), p.labels, measure, threshold) for p in pools
    }


def shift_temperature(
    held_out: Sequence[PoolPredictions],
    validation_temperature: float,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, dict[str, Any]]:
    """The card's temperature under shift, and the account the card keeps: the factor
    fitted on held-out sources, both ECEs (validation split and held-out sources) at the
    temperature applied, and which temperature is applied and why."""
    account: dict[str, Any] = {
        "rule": (
            f"the factor fitted on held-out sources multiplies the validation temperature "
            f"when it comes from at least {MIN_SHIFT_POOLS} pools, lies inside the search "
            "range and lowers their ECE"
        ),
        "validation_temperature": validation_temperature,
    }
    reasons = []
    factor = 1.0
    if held_out:
        scaled = np.concatenate([p.logits / p.temperature for p in held_out])
        labels = np.concatenate([p.labels for p in held_out])
        factor = fit_temperature(scaled, labels)
        before = expected_calibration_error(softmax(scaled, 1.0), labels)
        after = expected_calibration_error(softmax(scaled, factor), labels)
        account["held_out_sources"] = {
            "pools": [p.pool for p in held_out],
            "n": len(labels),
            "fitted_factor": factor,
            "ece_at_validation_temperature": before,
            "ece_at_fitted_factor": after,
        }
        if len(held_out) < MIN_SHIFT_POOLS:
            reasons.append(f"only {len(held_out)} held-out pool (one shift, not an estimate)")
        low, high = _FACTOR_RANGE
        if not low * 1.01 < factor < high * 0.99:
            reasons.append(f"factor {factor:.3g} at the end of the search range")
        if not after < before:
            reasons.append("it does not lower the held-out ECE")
        t_low, t_high = TEMPERATURE_RANGE
        if not t_low <= validation_temperature * factor <= t_high:
            reasons.append(
                f"the temperature it gives, {validation_temperature * factor:.3g}, is outside "
                f"the {t_low}..{t_high} a card may carry"
            )
    else:
        reasons.append("no held-out source predictions")
    applied = not reasons
    temperature = validation_temperature * (factor if applied else 1.0)
    account["applied_from"] = "held-out sources" if applied else "validation split"
    account["temperature"] = temperature
    account["factor_applied"] = factor if applied else 1.0
    if reasons:
        account["not_applied_because"] = reasons
    ece: dict[str, float] = {}
    if validation is not None and len(validation[1]):
        val_probs = softmax(np.asarray(validation[0], dtype=np.float64), temperature)
        ece["validation_split"] = expected_calibration_error(val_probs, validation[1])
    if held_out:
        probs, labels = _pooled(held_out, account["factor_applied"])
        ece["held_out_sources"] = expected_calibration_error(probs, labels)
    account["ece_at_applied_temperature"] = ece
    return temperature, account
