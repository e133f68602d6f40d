"""The radiograph as every other layer sees it, whatever file it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Window:
    """A linear display window (DICOM C.11.2.1.2 style) over modality values."""

    center: float
    width: float

    @property
    def low(self) -> float:
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        return self.center + self.width / 2.0

    @classmethod
    def from_range(cls, low: float, high: float) -> Window:
        return cls(center=(low + high) / 2.0, width=max(high - low, 1e-6))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Map values to [0, 1] float32: low -> 0, high -> 1, clipped outside."""
        width = max(float(self.width), 1e-6)
        out = np.subtract(np.asarray(values, dtype=np.float32), np.float32(self.low))
        out /= np.float32(width)  # in place: one image-sized array made, not two
        return np.clip(out, 0.0, 1.0, out=out)


@dataclass(frozen=True)
class ImageMetadata:
    """Non-identifying facts about the image, safe to show and to log."""

    path: Path
    format: str  # "DICOM", "PNG", "JPEG", "TIFF", "BMP", ...
    modality: str | None = None
    view_position: str | None = None
    body_part: str | None = None
    photometric_interpretation: str | None = None
    pixel_spacing: tuple[float, float] | None = None  # (row, column) in mm
    study_date: str | None = None  # as stored, YYYYMMDD for DICOM
    transfer_syntax: str | None = None
    frames: int = 1
    # PatientAge in years (DICOM AS: 068Y, 006M, 010W, 003D) and PatientSex (M, F, O):
    # not identifying on their own, and needed to tell whether a model's population fits.
    age_years: float | None = None
    sex: str | None = None


@dataclass(frozen=True)
class PatientInfo:
    """Identifying fields, kept apart: hidden until revealed in the GUI, never logged."""

    name: str | None = None
    patient_id: str | None = None
    birth_date: str | None = None
    accession: str | None = None  # AccessionNumber: names the order, so it identifies too

    def __repr__(self) -> str:  # never leak identifiers into logs or tracebacks
        return "PatientInfo(<hidden>)"


@dataclass
class XRay:
    """A 2-D radiograph.

    ``pixels`` are finite float32 modality values (rescale slope and intercept applied,
    or the VOI output where the file carries a VOI LUT table or a sigmoid VOI function),
    rows x columns as they are to be shown. ``inverted`` says the display must invert
    after windowing (MONOCHROME1, or Presentation LUT Shape INVERSE): the DICOM order is
    modality LUT, then VOI, then inversion, never inversion first.
    """

    pixels: np.ndarray
    bits_stored: int
    window: Window  # the file's default display window (or the full range)
    metadata: ImageMetadata
    patient: PatientInfo = field(default_factory=PatientInfo)
    inverted: bool = False
    # Things the user should be told: "frame 1 of 12", or a window from the file that
    # could not be used (NaN, infinite, outside the pixel values) and was replaced.
    notes: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return self.metadata.path

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    @property
    def value_range(self) -> tuple[float, float]:
        """Smallest and largest pixel value actually present."""
        return float(self.pixels.min()), float(self.pixels.max())

    def render(self, window: Window | None = None, invert: bool = False) -> np.ndarray:
        """Display intensities in [0, 1]: window first, then the file's and the user's inversion."""
        out = (window or self.window).apply(self.pixels)
        if self.inverted != invert:
            np.subtract(1.0, out, out=out)
        return out
