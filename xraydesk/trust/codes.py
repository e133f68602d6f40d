"""The warning codes a result can carry. They are stable: CSV and JSON files, the
results database and other programs key on them, so a code is never renamed or reused.
The message is for people and may change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOT_CHEST = "not_chest"  # not a radiograph, or not of the chest
ROTATED = "rotated"  # rotated 90, 180 or 270 degrees
INVERTED = "inverted"  # a negative (inverted grey scale)
LATERAL = "lateral"  # a lateral view; the models read frontal (PA/AP) films
OUT_OF_DISTRIBUTION = "out_of_distribution"  # unlike the model's training images
LOW_QUALITY = "low_quality"  # too small, heavily cropped, blank or near-constant
OUTSIDE_POPULATION = "outside_population"  # the patient is outside the card's population
CARD_UNVERIFIED = "card_unverified"  # the model card has no integrity record
INDETERMINATE = "indeterminate"  # below the site profile's top-probability threshold
PROFILE_REFUSED = "site_profile_refused"  # the site profile was edited or is another model's
EVIDENCE_OUTSIDE_LUNGS = "evidence_outside_lungs"  # the heat map lies mostly outside the lungs
MIRRORED = "mirrored"  # mirrored left to right (the heart on the image's left)

WARNING_CODES = (
    NOT_CHEST,
    ROTATED,
    INVERTED,
    LATERAL,
    OUT_OF_DISTRIBUTION,
    LOW_QUALITY,
    OUTSIDE_POPULATION,
    CARD_UNVERIFIED,
    INDETERMINATE,
    PROFILE_REFUSED,
    EVIDENCE_OUTSIDE_LUNGS,
    MIRRORED,
)

# The warnings that say why an answer is indeterminate (its class withheld though the
# image itself is fine): the results panel's "Indeterminate" headline gives their reason.
INDETERMINATE_REASONS = frozenset({INDETERMINATE, EVIDENCE_OUTSIDE_LUNGS})

# Short names people read (tables, badges); the code stays in tooltips and files.
WARNING_LABELS = {
    NOT_CHEST: "Not a chest X-ray",
    ROTATED: "Rotated",
    INVERTED: "Inverted",
    LATERAL: "Lateral view",
    OUT_OF_DISTRIBUTION: "Unlike training images",
    LOW_QUALITY: "Low quality",
    OUTSIDE_POPULATION: "Outside the model's population",
    CARD_UNVERIFIED: "Unverified model card",
    INDETERMINATE: "Indeterminate",
    PROFILE_REFUSED: "Site profile refused",
    EVIDENCE_OUTSIDE_LUNGS: "Evidence outside the lungs",
    MIRRORED: "Mirrored",
}


def warning_label(code: str) -> str:
    """The human name of a warning code (the code itself when it is unknown)."""
    return WARNING_LABELS.get(code, code)


@dataclass(frozen=True)
class ResultWarning:
    """One reason not to trust a result: a stable ``code`` and a sentence for the reader."""

    code: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in WARNING_CODES:
            raise ValueError(f"unknown warning code {self.code!r} (known: {WARNING_CODES})")

    @property
    def line(self) -> str:
        """One line with its code, as the DICOM SR and the node's worklist word it."""
        return f"Warning ({self.code}): {self.message}"

    def to_dict(self) -> dict[str, str]:
        """JSON form, as stored and exported: ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultWarning:
        return cls(code=str(data["code"]), message=str(data.get("message", "")))
