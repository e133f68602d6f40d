"""Explanations: heat maps (CAM by default, Grad-CAM and Grad-CAM++ on request), whether
they explain anything, and their overlay."""

from xraydesk.explain.cam import CamResult, class_activation_map
from xraydesk.explain.gradcam import grad_cam
from xraydesk.explain.methods import (
    DEFAULT_METHOD,
    METHODS,
    HeatMapMethod,
    heat_map,
    known_method,
    method_label,
)
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
    "DEFAULT_METHOD",
    "DEFAULT_OPACITY",
    "EMPTY_HEATMAP",
    "MAX_OPACITY",
    "METHODS",
    "CamResult",
    "HeatMapMethod",
    "blend_overlay",
    "class_activation_map",
    "colorize",
    "colormap_lut",
    "grad_cam",
    "heat_alpha",
    "heat_map",
    "is_empty_heatmap",
    "known_method",
    "method_label",
]
