"""The cardiothoracic ratio (CTR) from two lines drawn on the film (no Qt here).

The reader draws the widest transverse diameter of the heart, then the widest internal
diameter of the thorax; the ratio is their lengths' quotient. Lengths are physical
(pixel spacing, row then column) where the file gives it, so non-square pixels do not
bias the ratio; without spacing both lines are in pixels and the ratio is still exact.
The 0.50 reference is the usual one for a PA film; on an AP or supine film the heart is
magnified and the same number means less, which the text says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xraydesk.viewer.measure import Point, distance

CTR_POINTS = 4  # two lines: cardiac (points 0-1), thoracic (points 2-3)
CTR_REFERENCE = 0.5


@dataclass(frozen=True)
class CtrResult:
    cardiac: float
    thoracic: float
    unit: str  # "mm" or "px"

    @property
    def ratio(self) -> float | None:
        """cardiac / thoracic, or None when the thoracic line has no length."""
        return self.cardiac / self.thoracic if self.thoracic > 0 else None


def ctr(points: Sequence[Point], spacing: tuple[float, float] | None) -> CtrResult:
    """The two lengths of a finished CTR measurement (four points)."""
    if len(points) != CTR_POINTS:
        raise ValueError(f"a CTR needs {CTR_POINTS} points (two lines), got {len(points)}")
    cardiac, unit = distance(points[0], points[1], spacing)
    thoracic, _ = distance(points[2], points[3], spacing)
    return CtrResult(cardiac, thoracic, unit)


def _length(value: float, unit: str) -> str:
    return f"{value:.1f} mm" if unit == "mm" else f"{value:.0f} px"


def ctr_text(
    points: Sequence[Point], spacing: tuple[float, float] | None, view: str | None = None
) -> str:
    """The label while drawing ('heart 142.0 mm'), then 'CTR 0.48' over both lengths."""
    if len(points) < 2:
        return ""
    if len(points) < CTR_POINTS:
        cardiac, unit = distance(points[0], points[1], spacing)
        return f"heart {_length(cardiac, unit)}"
    result = ctr(points, spacing)
    if result.ratio is None:
        return "CTR: draw the thorax line wider than zero"
    text = (
        f"CTR {result.ratio:.2f}\nheart {_length(result.cardiac, result.unit)}"
        f" / thorax {_length(result.thoracic, result.unit)}"
    )
    if (view or "").upper() in ("AP", "AP SUPINE"):
        text += "\nAP film: heart magnified, 0.50 does not apply"
    elif result.ratio > CTR_REFERENCE:
        text += f"\nabove {CTR_REFERENCE:.2f} (PA reference)"
    return text
