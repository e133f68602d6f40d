"""Reading tools' arithmetic, without Qt: distances, angles, the patient line, linking.

Distances use the file's pixel spacing (DICOM PixelSpacing or ImagerPixelSpacing, row
then column, in mm) and fall back to pixels when the file does not say, so a length is
never shown in millimetres it does not have. Spacing at the detector (ImagerPixelSpacing)
includes the projection's magnification, as on every PACS ruler without calibration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xraydesk.imaging.age import format_age
from xraydesk.imaging.xray import ImageMetadata, Window

Point = tuple[float, float]  # (x, y) = (column, row) in image pixels
SEX_TEXT = {"M": "male", "F": "female", "O": "other"}


def distance(p0: Point, p1: Point, spacing: tuple[float, float] | None) -> tuple[float, str]:
    """The length of p0-p1 and its unit: mm with a spacing (row, column), else px."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    if spacing is None:
        return math.hypot(dx, dy), "px"
    row_mm, col_mm = spacing
    return math.hypot(dx * col_mm, dy * row_mm), "mm"


def distance_text(p0: Point, p1: Point, spacing: tuple[float, float] | None) -> str:
    value, unit = distance(p0, p1, spacing)
    return f"{value:.1f} mm" if unit == "mm" else f"{value:.0f} px"


def angle_degrees(a: Point, vertex: Point, b: Point, spacing: tuple[float, float] | None) -> float:
    """The angle at ``vertex`` between the rays to ``a`` and ``b`` (0-180 degrees), in
    physical space when the pixels are not square."""
    row_mm, col_mm = spacing if spacing is not None else (1.0, 1.0)
    ax, ay = (a[0] - vertex[0]) * col_mm, (a[1] - vertex[1]) * row_mm
    bx, by = (b[0] - vertex[0]) * col_mm, (b[1] - vertex[1]) * row_mm
    if math.hypot(ax, ay) == 0.0 or math.hypot(bx, by) == 0.0:
        return 0.0
    return math.degrees(abs(math.atan2(ax * by - ay * bx, ax * bx + ay * by)))


def patient_text(metadata: ImageMetadata | None) -> str:
    """'female, 68 years': the non-identifying facts a reader judges a film by ("" if
    the file says neither)."""
    if metadata is None:
        return ""
    parts = []
    if metadata.sex:
        parts.append(SEX_TEXT.get(metadata.sex, metadata.sex))
    if metadata.age_years is not None:
        parts.append(format_age(metadata.age_years))
    return ", ".join(parts)


def relative_window(window: Window, value_range: Sequence[float]) -> tuple[float, float]:
    """A window as fractions of an image's value range, to carry it to another study."""
    low, high = value_range
    span = max(high - low, 1e-6)
    return (window.center - low) / span, window.width / span


def window_from_relative(relative: tuple[float, float], value_range: Sequence[float]) -> Window:
    low, high = value_range
    span = max(high - low, 1e-6)
    return Window(center=low + relative[0] * span, width=max(relative[1] * span, 1e-6))
