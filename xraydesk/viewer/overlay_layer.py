"""The Grad-CAM heat map as a layer the view can composite at any opacity (no Qt here).

The blending law (colour map, attention-scaled alpha) lives once, in
``xraydesk.explain.blend_overlay``. Rather than copy it, the layer is *measured* from
it: blending over black gives colour x alpha (premultiplied colour), blending over
white gives 255 x (1 - alpha) on top of that. Painting the resulting premultiplied
RGBA layer with opacity ``o`` (Qt's source-over) gives
``base x (1 - o x alpha) + colour x o x alpha``, which is exactly
``blend_overlay(gray, heatmap, o)``. So moving the opacity slider recomposes in Qt
without recomputing anything, and exports match the engine's PNGs.

Colour and alpha depend on the heat value alone, so the measurement is made once on a
fine ramp of heat values (a lookup table) and each heat map is then a table lookup:
a few milliseconds per megapixel instead of two full-size blends.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from xraydesk.explain import blend_overlay

LEVELS = 65536  # heat quantisation of the table: alpha within half a grey level of exact


@cache
def layer_lut() -> np.ndarray:
    """(LEVELS, 4) uint8: premultiplied RGBA of the heat value k / (LEVELS - 1)."""
    ramp = np.linspace(0.0, 1.0, LEVELS, dtype=np.float32).reshape(256, LEVELS // 256)
    black = np.zeros_like(ramp)
    over_black = blend_overlay(black, ramp, 1.0).reshape(LEVELS, 3)
    over_white = blend_overlay(black + 1.0, ramp, 1.0).reshape(LEVELS, 3)
    # alpha from the mean over channels: it is the same in all three up to rounding
    diff = over_white.astype(np.int16) - over_black.astype(np.int16)
    alpha = np.clip(255 - diff.mean(axis=1) + 0.5, 0, 255).astype(np.uint8)
    lut = np.empty((LEVELS, 4), dtype=np.uint8)
    np.minimum(over_black, alpha[:, None], out=lut[:, :3])  # premultiplied: rgb <= a
    lut[:, 3] = alpha
    lut.setflags(write=False)
    return lut


def heat_layer(heatmap: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA uint8 (H, W, 4) of the coloured heat map at full opacity."""
    index = np.clip(heatmap, 0.0, 1.0) * np.float32(LEVELS - 1)
    index += 0.5
    return layer_lut()[index.astype(np.uint16)]
