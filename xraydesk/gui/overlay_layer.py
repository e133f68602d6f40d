"""The Grad-CAM heat map as a layer the view can composite at any opacity (no Qt here).

The blending law (colour map, attention-scaled alpha) lives once, in
``xraydesk.explain.blend_overlay``. Rather than copy it, the layer is *measured* from
it: blending over black gives colour x alpha (premultiplied colour), blending over
white gives 255 x (1 - alpha) on top of that. Painting the resulting premultiplied
RGBA layer with opacity ``o`` (Qt's source-over) gives
``base x (1 - o x alpha) + colour x o x alpha``, which is exactly
``blend_overlay(gray, heatmap, o)``. So moving the opacity slider recomposes in Qt
without recomputing anything, and exports match the engine's PNGs.
"""

from __future__ import annotations

import numpy as np

from xraydesk.explain import blend_overlay


def heat_layer(heatmap: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA uint8 (H, W, 4) of the coloured heat map at full opacity."""
    black = np.zeros(heatmap.shape, dtype=np.float32)
    over_black = blend_overlay(black, heatmap, 1.0)
    over_white = blend_overlay(black + 1.0, heatmap, 1.0)
    # alpha from the mean over channels: it is the same in all three up to rounding
    diff = over_white.astype(np.int16) - over_black.astype(np.int16)
    alpha = np.clip(255 - diff.mean(axis=2) + 0.5, 0, 255).astype(np.uint8)
    layer = np.empty((*heatmap.shape, 4), dtype=np.uint8)
    np.minimum(over_black, alpha[..., None], out=layer[..., :3])  # premultiplied: rgb <= a
    layer[..., 3] = alpha
    return layer
