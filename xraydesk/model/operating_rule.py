"""A model card's operating rule: the confidence below which the model names no class.

A model answers every image, and on a hospital it never saw it answers wrongly with the
same 97 % it gives where it is right. The card therefore carries a rule: when the top
probability (``measure`` "top_probability") or the gap between the two most probable
classes ("margin"), at the card's temperature, is below ``threshold``, the verdict
withholds the class as indeterminate (``trust.verdict.decide``; a site profile's rule
replaces it where one is adopted).

The rule says what it was chosen for and from, so a reader can judge it:

- ``max_error``: the target, the largest share of answered images that may be wrong
  (0.10: "at most 10 % of answered images wrong");
- ``chosen_from``: ``held_out_sources`` (predictions of models trained without a pool, on
  that pool: the honest estimate for another hospital) or ``validation_split`` (the
  model's own validation images, same sources as its training: a user's own models, or
  when no held-out source reaches the target); ``pools`` and ``n`` say which images;
- ``coverage`` and ``accuracy``: the share answered and the accuracy of the answered
  images on those images at ``threshold``; ``target_met`` whether the target was reached;
- ``held_out``: per held-out pool, what the rule does there (coverage, accuracy, n), also
  when it was chosen from a validation split.

The rule is result-bearing, so the card's integrity hash covers it. Qt-free, torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xraydesk.errors import ModelError

TOP_PROBABILITY = "top_probability"
MARGIN = "margin"
MEASURES = (TOP_PROBABILITY, MARGIN)
HELD_OUT_SOURCES = "held_out_sources"
VALIDATION_SPLIT = "validation_split"
CHOSEN_FROM = (HELD_OUT_SOURCES, VALIDATION_SPLIT)
_MEASURE_WORDS = {TOP_PROBABILITY: "top-class probability", MARGIN: "margin"}


def confidence_of(probabilities: np.ndarray, measure: str) -> np.ndarray:
    """The rule's measure of rows of probabilities (..., classes): the top probability, or
    the top minus the second (0 when two classes tie, 1 when one has everything)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if measure == TOP_PROBABILITY:
        return p.max(axis=-1)
    top2 = np.sort(p, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


@dataclass(frozen=True)
class OperatingRule:
    """Below ``threshold`` of ``measure`` the model does not name a class."""

    threshold: float
    measure: str = TOP_PROBABILITY
    max_error: float = 0.10
    chosen_from: str = HELD_OUT_SOURCES
    pools: tuple[str, ...] = ()
    n: int = 0
    coverage: float | None = None
    accuracy: float | None = None
    target_met: bool = True
    held_out: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    def indeterminate(self, probabilities: np.ndarray) -> bool:
        """True when one row of probabilities is below the rule (the class is withheld)."""
        return float(confidence_of(probabilities, self.measure)) < self.threshold

    @property
    def measure_words(self) -> str:
        return _MEASURE_WORDS[self.measure]

    @property
    def target_text(self) -> str:
        where = (
            "on sources not seen in training"
            if self.chosen_from == HELD_OUT_SOURCES
            else "on the model's validation split"
        )
        return f"{where}, at most {self.max_error:.0%} of answered images wrong"

    @property
    def source_text(self) -> str:
        """What the rule was chosen from, as the card and the warning say it."""
        pools = ", ".join(self.pools) or "unnamed"
        if self.chosen_from == HELD_OUT_SOURCES:
            return f"held-out sources: {pools}, n = {self.n}"
        return f"validation split (not held-out sources): {pools}, n = {self.n}"

    @property
    def summary(self) -> str:
        """A few words for listings: the threshold and where it was chosen."""
        where = "held-out sources" if self.chosen_from == HELD_OUT_SOURCES else "validation split"
        if self.threshold <= 0:
            return f"answers every image (rule from its {where})"
        return (
            f"indeterminate below a {self.measure_words} of {self.threshold:.0%} "
            f"(rule from its {where})"
        )

    @property
    def line(self) -> str:
        """One sentence for the card's text and ``xraydesk models``."""
        text = (
            f"Indeterminate below a {self.measure_words} of {self.threshold:.0%}"
            if self.threshold > 0
            else "Answers every image (no threshold)"
        )
        text += f", chosen from {self.source_text} for the target: {self.target_text}."
        if self.coverage is not None and self.accuracy is not None:
            text += (
                f" There it answers {self.coverage:.0%} of images with accuracy {self.accuracy:.3f}"
            )
            text += "." if self.target_met else " (target not reached)."
        return text + (f" {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "threshold": self.threshold,
            "max_error": self.max_error,
            "target": self.target_text,
            "chosen_from": self.chosen_from,
            "pools": list(self.pools),
            "n": self.n,
            "coverage": self.coverage,
            "accuracy": self.accuracy,
            "target_met": self.target_met,
            "held_out": {k: dict(v) for k, v in self.held_out.items()},
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> OperatingRule | None:
        """The checked rule of a card's ``operating_rule`` (None when absent), or
        ``ModelError`` naming the card and the value that no chooser makes."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ModelError(f"{where}: operating_rule must be an object, not {data!r:.40}")
        try:
            rule = cls(
                threshold=float(data["threshold"]),
                measure=str(data.get("measure", TOP_PROBABILITY)),
                max_error=float(data.get("max_error", 0.10)),
                chosen_from=str(data.get("chosen_from", HELD_OUT_SOURCES)),
                pools=tuple(str(p) for p in data.get("pools", [])),
                n=int(data.get("n", 0)),
                coverage=_optional_float(data.get("coverage")),
                accuracy=_optional_float(data.get("accuracy")),
                target_met=_bool(data.get("target_met", True)),
                held_out={str(k): dict(v) for k, v in (data.get("held_out") or {}).items()},
                note=str(data.get("note", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ModelError(f"{where}: malformed operating_rule ({exc})") from None
        rule.check(where)
        return rule

    def check(self, where: str) -> None:
        """Refuse values no chooser makes: a threshold of 1 or more withholds every answer,
        a negative or NaN one is no rule at all."""
        if self.measure not in MEASURES:
            raise ModelError(
                f"{where}: operating_rule measure {self.measure!r} is not one of "
                f"{', '.join(MEASURES)}"
            )
        if not (math.isfinite(self.threshold) and 0.0 <= self.threshold < 1.0):
            raise ModelError(
                f"{where}: operating_rule threshold {self.threshold!r} is outside 0..1 "
                "(1 or more would withhold every answer)"
            )
        if not (math.isfinite(self.max_error) and 0.0 < self.max_error < 1.0):
            raise ModelError(f"{where}: operating_rule max_error {self.max_error!r} not in (0, 1)")
        if self.chosen_from not in CHOSEN_FROM:
            raise ModelError(
                f"{where}: operating_rule chosen_from {self.chosen_from!r} is not one of "
                f"{', '.join(CHOSEN_FROM)}"
            )
        shares = [v for v in (self.coverage, self.accuracy) if v is not None]
        if self.n < 0 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in shares):
            raise ModelError(f"{where}: operating_rule coverage, accuracy or n out of range")


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"target_met must be true or false, not {value!r}")
    return value
