"""Whether a heat map explains anything at all (no Qt, no torch).

Grad-CAM can come out all zeros (no positive gradient reached the last stage, common
with a briefly trained head) or flat (the same weight everywhere). Colouring such a map
would still be labelled "Explains Normal", which tells the reader something false: the
model's attention is unknown, not spread evenly. The viewer, the PDF report and the
batch engine's PNG writer all ask ``is_empty_heatmap`` and say ``EMPTY_HEATMAP`` instead.
"""

from __future__ import annotations

import numpy as np

EMPTY_HEATMAP = "no explanation: the heat map is empty"
MIN_PEAK = 0.01  # a map whose hottest pixel is below this is empty (values are in [0, 1])
MIN_SPREAD = 0.05  # hottest minus coolest below this: flat, it singles nothing out


def is_empty_heatmap(heatmap: np.ndarray) -> bool:
    """True when the map cannot be shown as an explanation: empty, flat or not finite.

    The spread is taken between the 1st and 99.9th percentile of a subsample, so a map
    that is flat except for a few stray pixels (interpolation ringing at the border)
    counts as flat too.
    """
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.size == 0 or not np.isfinite(heat).all():
        return True
    if float(heat.max()) < MIN_PEAK:
        return True
    step = max(1, int(np.ceil(np.sqrt(heat.size / 262_144))))
    low, high = np.percentile(heat[::step, ::step] if heat.ndim == 2 else heat, [1.0, 99.9])
    return float(high - low) < MIN_SPREAD
