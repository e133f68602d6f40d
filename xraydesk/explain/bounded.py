"""Heat-map overlay files at a bounded size.

A 6000 x 6000 film's overlay at full size cost 3.45 GB at its peak (float copies of the
film and the map in three channels, for a PNG of 108 MB of RGB nobody zooms into); the
overlay written to a file is at most ``MAX_OVERLAY_SIDE`` pixels on its longer side,
aspect kept, and the film is shrunk before it is windowed, so no full-size RGB or float64
array is ever made. The viewer, which zooms, keeps its full-size layer.
"""

from __future__ import annotations

import numpy as np

from xraydesk.explain.overlay import DEFAULT_OPACITY, blend_overlay
from xraydesk.imaging.resample import resize
from xraydesk.imaging.xray import XRay

MAX_OVERLAY_SIDE = 2048  # above a radiologist's monitor (2048 x 2560 at most), per side


def overlay_shape(shape: tuple[int, int], max_side: int = MAX_OVERLAY_SIDE) -> tuple[int, int]:
    """(height, width) of the overlay of an image of ``shape``: the same when it fits."""
    height, width = shape
    scale = min(1.0, max_side / max(height, width, 1))
    return max(1, round(height * scale)), max(1, round(width * scale))


def bounded_overlay(
    xray: XRay, heatmap: np.ndarray, opacity: float = DEFAULT_OPACITY
) -> np.ndarray:
    """RGB uint8 of ``heatmap`` (at the film's size) blended over ``xray``, shrunk to
    ``overlay_shape``; the film is resized first, then windowed and inverted as
    ``XRay.render`` does."""
    shape = overlay_shape(xray.shape)
    if shape == xray.shape:
        return blend_overlay(xray.render(), heatmap, opacity)
    gray = xray.window.apply(resize(xray.pixels, *shape))
    if xray.inverted:
        np.subtract(1.0, gray, out=gray)
    small = resize(heatmap, *shape)
    return blend_overlay(gray, np.clip(small, 0.0, 1.0, out=small), opacity)
