"""From the model's input square back to the source image, for every heat-map method."""

from __future__ import annotations

import numpy as np

from xraydesk.imaging.resample import resize
from xraydesk.model.preprocessing import Preprocessing


def to_source(cam: np.ndarray, preprocessing: Preprocessing, shape: tuple[int, int]) -> np.ndarray:
    """Undo the preprocessing geometry: crop any letterbox padding, resize to the source.

    ``cam`` is a [0, 1] map at the model's input size; the result is float32 (H, W) in
    [0, 1], aligned with the source pixels.
    """
    top, left, bottom, right = preprocessing.content_box(*shape)
    resized = resize(cam[top:bottom, left:right], *shape)
    return np.clip(resized, 0.0, 1.0, out=resized)
