"""Explanations: Grad-CAM heat maps, whether they explain anything, and their overlay."""

from xraydesk.explain.gradcam import CamResult, grad_cam
from xraydesk.explain.overlay import (
    DEFAULT_OPACITY,
    MAX_OPACITY,
    blend_overlay,
    colorize,
    colormap_lut,
    heat_alpha,
)
from xraydesk.explain.quality import EMPTY_HEATMAP, is_empty_heatmap

__all__ = [
    "DEFAULT_OPACITY",
    "EMPTY_HEATMAP",
    "MAX_OPACITY",
    "CamResult",
    "blend_overlay",
    "colorize",
    "colormap_lut",
    "grad_cam",
    "heat_alpha",
    "is_empty_heatmap",
]
