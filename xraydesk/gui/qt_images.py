"""numpy <-> QImage, copying so no QImage ever points into freed numpy memory."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def unit_to_gray8(unit: np.ndarray) -> np.ndarray:
    """Display intensities in [0, 1] to uint8: the only place the view drops to 8 bits,
    after the window has been applied to the full-depth values."""
    out = np.multiply(unit, 255.0, dtype=np.float32)
    out += 0.5
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def gray_qimage(gray8: np.ndarray) -> QImage:
    """A (H, W) uint8 array to a Grayscale8 QImage (copied)."""
    gray8 = np.ascontiguousarray(gray8, dtype=np.uint8)
    height, width = gray8.shape
    return QImage(gray8.data, width, height, width, QImage.Format.Format_Grayscale8).copy()


def rgba_premultiplied_qimage(rgba: np.ndarray) -> QImage:
    """A premultiplied (H, W, 4) uint8 RGBA array to a QImage (copied)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    height, width = rgba.shape[:2]
    fmt = QImage.Format.Format_RGBA8888_Premultiplied
    return QImage(rgba.data, width, height, 4 * width, fmt).copy()


def rgb_array(image: QImage) -> np.ndarray:
    """Any QImage to an (H, W, 3) uint8 RGB array (for exports and tests)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : 3 * width].reshape(height, width, 3).copy()
