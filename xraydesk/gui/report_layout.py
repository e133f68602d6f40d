"""The PDF report's heat-map colour scale (the exported PNG's legend strip is drawn by
``explain.legend``, the same one the batch engine's heat-map PNGs carry)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPen

from xraydesk.explain.legend import SCALE_HIGH, SCALE_LOW
from xraydesk.explain.overlay import colormap_lut


def scale_gradient(rect: QRectF) -> QLinearGradient:
    """The viewer's colour map (explain.overlay) from left (no support) to right (most)."""
    gradient = QLinearGradient(rect.left(), 0, rect.right(), 0)
    lut = colormap_lut()
    for k in range(0, 256, 15):
        r, g, b = (int(v) for v in lut[k])
        gradient.setColorAt(k / 255.0, QColor(r, g, b))
    r, g, b = (int(v) for v in lut[255])
    gradient.setColorAt(1.0, QColor(r, g, b))
    return gradient


def paint_colour_scale(
    painter: QPainter, rect: QRectF, caption: str, text_colour: QColor, font: QFont
) -> None:
    """A bar with the colour map, "low" and "high" at its ends and ``caption`` under it;
    ``rect`` holds the bar in its top half and the words in the bottom half."""
    bar = QRectF(rect.left(), rect.top(), rect.width(), rect.height() * 0.42)
    painter.fillRect(bar, scale_gradient(bar))
    painter.setPen(QPen(text_colour, max(1.0, rect.height() * 0.01)))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRect(bar)
    painter.setFont(font)
    words = QRectF(rect.left(), bar.bottom(), rect.width(), rect.height() - bar.height())
    painter.drawText(words, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, SCALE_LOW)
    painter.drawText(words, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, SCALE_HIGH)
    if caption:
        centre = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        painter.drawText(words, centre, caption)
