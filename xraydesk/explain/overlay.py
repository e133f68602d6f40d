"""Blending a heat map over a radiograph, and the colour scale the GUI shows as a legend."""

from __future__ import annotations

from functools import cache

import numpy as np

# Google's Turbo colour map (Mikhailov 2019), as its published polynomial approximation:
# perceptually smoother than jet and readable by most colour-blind users.
_TURBO_R = (0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943)
_TURBO_G = (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604)
_TURBO_B = (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973)


@cache
def colormap_lut(name: str = "turbo") -> np.ndarray:
    """A (256, 3) uint8 lookup table: index 0 is 'no attention', 255 is 'most'."""
    if name != "turbo":
        raise ValueError(f"unknown colour map {name!r}")
    x = np.linspace(0.0, 1.0, 256)
    channels = [np.polyval(coeffs[::-1], x) for coeffs in (_TURBO_R, _TURBO_G, _TURBO_B)]
    lut = np.clip(np.stack(channels, axis=1), 0.0, 1.0)
    lut = (lut * 255.0 + 0.5).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def colorize(heatmap: np.ndarray, name: str = "turbo") -> np.ndarray:
    """Heat map in [0, 1] (H, W) to RGB uint8 (H, W, 3)."""
    index = np.clip(heatmap * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return colormap_lut(name)[index]


def blend_overlay(
    gray: np.ndarray, heatmap: np.ndarray, opacity: float = 0.4, name: str = "turbo"
) -> np.ndarray:
    """Alpha-blend a coloured heat map over a [0, 1] grey image; returns RGB uint8.

    The opacity is scaled by the heat itself, so regions the model ignored keep the
    radiograph visible instead of being tinted blue.
    """
    if gray.shape != heatmap.shape:
        raise ValueError(f"image {gray.shape} and heat map {heatmap.shape} differ in size")
    opacity = float(np.clip(opacity, 0.0, 1.0))
    base = np.repeat((np.clip(gray, 0.0, 1.0) * 255.0)[..., None], 3, axis=2).astype(np.float32)
    colour = colorize(heatmap, name).astype(np.float32)
    # sqrt: mid-level attention stays visible, zero attention stays untinted
    alpha = (opacity * np.sqrt(np.clip(heatmap, 0.0, 1.0)))[..., None].astype(np.float32)
    out = base * (1.0 - alpha) + colour * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
