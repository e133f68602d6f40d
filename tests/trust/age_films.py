"""The same real radiograph as DICOMs that differ only in PatientAge, and which of those
ages lie outside each bundled model's population (the cards' populations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.dicom_factory import make_dicom
from tests.paths import MODELS_DIR

MODELS = {name: MODELS_DIR / f"{name}.json" for name in ("pediatric-pneumonia", "chest-3class")}
AGES = ("068Y", "030Y", "012Y", "006Y", "012M", "002W", "003D", "003Y")
# pediatric-pneumonia: 1-5 years; chest-3class: 1-5 years and 18+ (the cards' populations)
OUTSIDE = {
    "pediatric-pneumonia": {"068Y", "030Y", "012Y", "006Y", "002W", "003D"},
    "chest-3class": {"012Y", "006Y", "002W", "003D"},
}


def make_films(folder: Path, pixels: np.ndarray) -> dict[str, Path]:
    """One DICOM per age (its own study and instance UIDs), the same pixels in each."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        age: make_dicom(
            folder / f"age-{age}.dcm",
            pixels,
            bits_stored=12,
            extra={"PatientAge": age, "PatientSex": "F"},
        )
        for age in AGES
    }
