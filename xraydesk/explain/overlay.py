"""Blending a heat map over a radiograph, and the colour scale the GUI shows as a legend.

One colour law for every place a heat map appears (the viewer's layer is measured from
``blend_overlay``, the batch engine's PNGs, the PACS heat-map images, the PDF report):

- **viridis**, a perceptually uniform map (lightness rises steadily from dark violet to
  yellow, readable by colour-blind users and in grey print), computed here from its
  published polynomial fit, so no plotting library is needed at run time. Its hues are
  never grey, so the overlay cannot be mistaken for a density on the film, and it has
  no bright red band that suggests an alarm where the model merely looked.
- **low values transparent**: below ``TRANSPARENT_BELOW`` the film is untouched, above
  it the alpha rises smoothly with the heat. Regions the model barely used keep the
  anatomy visible instead of tinting the whole film.
- a subtle default opacity (``DEFAULT_OPACITY``), capped at ``MAX_OPACITY`` in the
  viewer, so the anatomy under the hottest region always shows through.
"""

from __future__ import annotations

from functools import cache

import numpy as np

# Viridis (van der Walt and Smith, matplotlib 2.0) as a degree-6 polynomial per channel
# (Matt Zucker's least-squares fit, public domain): within 1 % of the published table.
_VIRIDIS = (
    (0.2777273272234177, 0.005407344544966578, 0.3340998053353061),
    (0.1050930431085774, 1.404613529898575, 1.384590162594685),
    (-0.3308618287255563, 0.214847559468213, 0.09509516302823659),
    (-4.634230498983486, -5.799100973351585, -19.33244095627987),
    (6.228269936347081, 14.17993336680509, 56.69055260068105),
    (4.776384997670288, -13.74514537774601, -65.35303263337234),
    (-5.435455855934631, 4.645852612178535, 26.3124352495832),
)
COLORMAP = "viridis"
TRANSPARENT_BELOW = 0.2  # heat under this leaves the film untinted
DEFAULT_OPACITY = 0.35  # the viewer's first opacity, and the engine's PNGs
MAX_OPACITY = 0.6  # the most the viewer offers: the anatomy always shows through


@cache
def colormap_lut(name: str = COLORMAP) -> np.ndarray:
    """A (256, 3) uint8 lookup table: index 0 is 'no attention', 255 is 'most'."""
    if name != COLORMAP:
        raise ValueError(f"unknown colour map {name!r}")
    x = np.linspace(0.0, 1.0, 256)[:, None]
    coeffs = np.asarray(_VIRIDIS)
    lut = np.zeros((256, 3))
    for row in coeffs[::-1]:  # Horner's rule, highest power first
        lut = lut * x + row
    lut = (np.clip(lut, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def colorize(heatmap: np.ndarray, name: str = COLORMAP) -> np.ndarray:
    """Heat map in [0, 1] (H, W) to RGB uint8 (H, W, 3)."""
    index = np.clip(heatmap * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return colormap_lut(name)[index]


def heat_alpha(heatmap: np.ndarray) -> np.ndarray:
    """How much of the colour covers the film, per pixel, at full opacity (float32 [0, 1]).

    Zero up to ``TRANSPARENT_BELOW``, then a smoothstep to 1 at the hottest value: no
    hard edge at the threshold, and mid-level attention stays visible.
    """
    t = np.clip((np.asarray(heatmap, dtype=np.float32) - TRANSPARENT_BELOW), 0.0, None)
    t = np.clip(t / np.float32(1.0 - TRANSPARENT_BELOW), 0.0, 1.0)
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)


def blend_overlay(
    gray: np.ndarray, heatmap: np.ndarray, opacity: float = DEFAULT_OPACITY, name: str = COLORMAP
) -> np.ndarray:
    """Alpha-blend a coloured heat map over a [0, 1] grey image; returns RGB uint8.

    The opacity is scaled by ``heat_alpha``, so regions the model ignored keep the
    radiograph untinted.
    """
    if gray.shape != heatmap.shape:
        raise ValueError(f"image {gray.shape} and heat map {heatmap.shape} differ in size")
    opacity = float(np.clip(opacity, 0.0, 1.0))
    base = np.repeat((np.clip(gray, 0.0, 1.0) * 255.0)[..., None], 3, axis=2).astype(np.float32)
    colour = colorize(heatmap, name).astype(np.float32)
    alpha = (np.float32(opacity) * heat_alpha(heatmap))[..., None]
    out = base * (1.0 - alpha) + colour * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
