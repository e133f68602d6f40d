"""Explanations: heat maps (CAM by default, Grad-CAM and Grad-CAM++ on request), whether
they explain anything, and their overlay.

The names below are imported on first use (PEP 562), not with the package: the viewer's
panels and settings use the method registry and the overlay before any model (torch, the
grad-cam package) is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xraydesk.lazy_exports import lazy_getattr

# public name -> the module that defines it
_EXPORTS = {
    "CamResult": "xraydesk.explain.cam",
    "class_activation_map": "xraydesk.explain.cam",
    "grad_cam": "xraydesk.explain.gradcam",
    "DEFAULT_METHOD": "xraydesk.explain.methods",
    "METHODS": "xraydesk.explain.methods",
    "HeatMapMethod": "xraydesk.explain.methods",
    "heat_map": "xraydesk.explain.heatmaps",
    "known_method": "xraydesk.explain.methods",
    "method_label": "xraydesk.explain.methods",
    "DEFAULT_OPACITY": "xraydesk.explain.overlay",
    "MAX_OPACITY": "xraydesk.explain.overlay",
    "blend_overlay": "xraydesk.explain.overlay",
    "colorize": "xraydesk.explain.overlay",
    "colormap_lut": "xraydesk.explain.overlay",
    "heat_alpha": "xraydesk.explain.overlay",
    "EMPTY_HEATMAP": "xraydesk.explain.quality",
    "is_empty_heatmap": "xraydesk.explain.quality",
}

if TYPE_CHECKING:
    from xraydesk.explain.cam import CamResult, class_activation_map
    from xraydesk.explain.gradcam import grad_cam
    from xraydesk.explain.heatmaps import heat_map
    from xraydesk.explain.methods import (
        DEFAULT_METHOD,
        METHODS,
        HeatMapMethod,
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


__getattr__ = lazy_getattr(__name__, _EXPORTS)


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
