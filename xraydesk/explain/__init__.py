"""Explanations: Grad-CAM heat maps and their overlay on the image."""

from xraydesk.explain.gradcam import CamResult, grad_cam
from xraydesk.explain.overlay import blend_overlay, colorize, colormap_lut

__all__ = ["CamResult", "blend_overlay", "colorize", "colormap_lut", "grad_cam"]
