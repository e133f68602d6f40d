"""numpy <-> QImage for display, built so the GUI thread does as little as possible.

Display images are made directly in Qt's native 32-bit formats (RGB32 for the
radiograph, premultiplied ARGB32 for the heat layer): ``QPixmap.fromImage`` then shares
the pixels instead of converting them, which on a 9-megapixel DX image saves more than
a hundred milliseconds per change. The QImage points into a numpy buffer, so the two
travel together in ``DisplayImage`` and the buffer lives as long as the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QImage

from xraydesk.imaging.xray import Window, XRay


@dataclass(frozen=True)
class DisplayImage:
    image: QImage
    buffer: np.ndarray  # the memory ``image`` points into
    gray: np.ndarray | None = None  # the 8-bit grey values, for the radiograph


def unit_to_gray8(unit: np.ndarray) -> np.ndarray:
    """Display intensities in [0, 1] to uint8 (rounded); the view's only drop to 8 bits,
    after the window has been applied to the full-depth values."""
    scaled = np.multiply(unit, 255.0, dtype=np.float32)
    scaled += 0.5
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return scaled.astype(np.uint8)


def render_display(xray: XRay, window: Window, invert: bool) -> DisplayImage:
    """Window the full-depth pixels (``XRay.render``), then make the display image."""
    return gray_display(unit_to_gray8(xray.render(window, invert)))


def gray_display(gray8: np.ndarray) -> DisplayImage:
    """A (H, W) uint8 array as an RGB32 image (grey in all three channels)."""
    gray8 = np.ascontiguousarray(gray8, dtype=np.uint8)
    height, width = gray8.shape
    rgb = gray8.astype(np.uint32)
    rgb *= 0x010101
    rgb |= 0xFF000000
    image = QImage(rgb.data, width, height, 4 * width, QImage.Format.Format_RGB32)
    return DisplayImage(image, rgb, gray8)


def premultiplied_display(rgba: np.ndarray) -> DisplayImage:
    """A premultiplied (H, W, 4) uint8 RGBA array as a premultiplied ARGB32 image."""
    height, width = rgba.shape[:2]
    argb = rgba[..., 3].astype(np.uint32) << 24
    argb |= rgba[..., 0].astype(np.uint32) << 16
    argb |= rgba[..., 1].astype(np.uint32) << 8
    argb |= rgba[..., 2]
    fmt = QImage.Format.Format_ARGB32_Premultiplied
    return DisplayImage(QImage(argb.data, width, height, 4 * width, fmt), argb)


def rgb_array(image: QImage) -> np.ndarray:
    """Any QImage to an (H, W, 3) uint8 RGB array (for exports and tests)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : 3 * width].reshape(height, width, 3).copy()
