"""Calibration under shift: where a pool's probabilities are much less reliable.

The trainer's evaluation reports the expected calibration error (ECE) per pool of the
test split (``metrics["test"]["per_source"]``). A single overall ECE hides a pool whose
probabilities are far off; the card's limitations name such pools, and held-out sources
(``metrics["calibration_under_shift"]``, ``trainer.operating_choice``) when their ECE is
much worse than the test split's.
"""

from __future__ import annotations

from typing import Any

FACTOR = 3.0  # a pool's ECE this many times the overall one...
MIN_GAP = 0.05  # ...and at least this much above it (small ECEs differ by noise)
MIN_IMAGES = 20  # fewer test images than this from a pool: too few to judge


def pool_calibration(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{pool: {"n": test images, "ece": its ECE}} from a card's metrics (empty if none)."""
    per_source = metrics.get("test", {}).get("per_source") or {}
    found = {}
    for pool, m in per_source.items():
        if isinstance(m, dict) and isinstance(m.get("ece"), int | float):
            found[str(pool)] = {"n": int(m.get("n", 0)), "ece": float(m["ece"])}
    return found


def calibration_limitations(metrics: dict[str, Any]) -> list[str]:
    """One sentence per pool whose ECE is much larger than the overall one."""
    overall = metrics.get("test", {}).get("ece")
    if not isinstance(overall, int | float):
        return []
    notes = []
    for pool, m in sorted(pool_calibration(metrics).items()):
        if m["n"] >= MIN_IMAGES and m["ece"] > max(FACTOR * overall, overall + MIN_GAP):
            notes.append(
                f"Calibration is much worse on {pool}: expected calibration error "
                f"{m['ece']:.3f} on its {m['n']} test images against {overall:.3f} overall, "
                "so its probabilities overstate or understate how often they are right. "
                "Expect the same, or worse, on images from other hospitals."
            )
    return notes + shift_limitations(metrics, overall)


def shift_limitations(metrics: dict[str, Any], overall: float) -> list[str]:
    """One sentence when held-out sources (pools a model of the recipe never saw,
    ``metrics["calibration_under_shift"]``) are much worse calibrated than the test split."""
    shift = metrics.get("calibration_under_shift") or {}
    held = shift.get("held_out_sources") or {}
    ece = (shift.get("ece_at_applied_temperature") or {}).get("held_out_sources")
    if not isinstance(ece, int | float) or int(held.get("n", 0)) < MIN_IMAGES:
        return []
    if ece <= max(FACTOR * overall, overall + MIN_GAP):
        return []
    return [
        f"Calibration on sources not seen in training is much worse: expected calibration "
        f"error {ece:.3f} on held-out sources ({', '.join(held.get('pools', []))}, "
        f"n = {held['n']}, each predicted by a model of this recipe trained without it) "
        f"against {overall:.3f} on the test split, with the temperature fitted on the "
        f"{shift.get('applied_from', 'validation split')}. Its probabilities overstate how "
        "often it is right on images from another hospital."
    ]


def add_calibration_limitations(card_limitations: list[str], metrics: dict[str, Any]) -> None:
    """Append the pool notes not already there (a card recomputed twice stays the same)."""
    for note in calibration_limitations(metrics):
        stem = note.split(":")[0]
        card_limitations[:] = [x for x in card_limitations if not x.startswith(stem)]
        card_limitations.append(note)
