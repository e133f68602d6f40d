"""Pieces shared by the PDF report and the exported PNG: the heat map's colour scale and
the legend strip that labels an exported image (explained class, model, "Not for
diagnosis"), so a picture taken out of the app never travels without them."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QLinearGradient, QPainter, QPen

from xraydesk.explain.overlay import colormap_lut
from xraydesk.viewer.report_facts import legend_text

SCALE_LOW, SCALE_HIGH = "low", "high"


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


def _fitting_font(lines: tuple[str, ...], width: float, largest: int) -> QFont:
    """The largest bold font (at most ``largest`` pixels, at least 8) whose widest line
    fits ``width``: a narrow image still gets the whole legend."""
    font = QFont("DejaVu Sans")
    font.setBold(True)
    for size in range(largest, 7, -1):
        font.setPixelSize(size)
        metrics = QFontMetrics(font)
        if max(metrics.horizontalAdvance(line) for line in lines) <= width:
            break
    return font


def with_legend(image: QImage, explained_class_name: str | None, model: str) -> QImage:
    """``image`` with a strip below it: the colour scale (when a heat map is shown), what it
    explains, the model and "Not for diagnosis"."""
    if image.isNull():
        return image
    width = image.width()
    lines = legend_text(explained_class_name, model)
    margin = max(4, width // 60)
    font = _fitting_font(lines, width - 2 * margin, max(12, min(width, 2400) // 45))
    unit = font.pixelSize()
    scale_h = int(unit * 2.4) if explained_class_name else 0
    strip = int(margin * 2 + scale_h + unit * 1.35 * len(lines))
    out = QImage(width, image.height() + strip, QImage.Format.Format_RGB32)
    out.fill(QColor(16, 18, 22))
    painter = QPainter(out)
    try:
        painter.drawImage(0, 0, image)
        top = image.height() + margin
        if explained_class_name:
            scale = QRectF(margin, top, min(width - 2 * margin, unit * 16.0), unit * 2.1)
            small = QFont(font)
            small.setBold(False)
            small.setPixelSize(max(8, int(unit * 0.8)))
            paint_colour_scale(painter, scale, "", QColor(230, 232, 236), small)
            top += scale_h
        for k, line in enumerate(lines):
            last = k == len(lines) - 1  # "Not for diagnosis" stands out
            font.setBold(last)
            painter.setFont(font)
            painter.setPen(QColor(255, 190, 90) if last else QColor(235, 237, 240))
            box = QRectF(margin, top + k * unit * 1.35, width - 2 * margin, unit * 1.3)
            painter.drawText(box, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, line)
    finally:
        painter.end()
    return out
