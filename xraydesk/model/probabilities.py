"""Logits to probabilities: the one softmax of classification, calibration and checks.

Pure numpy, low in the model layer: the classifier, the runtime's faithfulness re-check,
the input gate and the training metrics all use it.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax in float64 of ``logits / temperature``, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
