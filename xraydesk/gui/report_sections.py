"""The PDF report's sections, each painted at a given height on the page: identifiers,
the answer, the images with the colour scale and what the heat map explains, the model's
limits and the reader's sign-off. ``gui/report.py`` orders them on the page."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

from xraydesk.gui.report_layout import paint_colour_scale
from xraydesk.viewer.report_facts import ReportFacts

DPI = 300
MM = DPI / 25.4  # device pixels per millimetre
MAX_IMAGE_SIDE = 1600  # pixels embedded in the PDF: sharp in print, small files
DARK, DIM, ACCENT = QColor(20, 24, 30), QColor(95, 102, 112), QColor(30, 110, 200)
WARN_EDGE, WARN_FILL = QColor(200, 120, 20), QColor(255, 240, 215)
ALERT_EDGE, ALERT_FILL = QColor(190, 30, 30), QColor(255, 228, 225)
LEFT_MIDDLE = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT_MIDDLE = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
WRAP = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop) | int(Qt.TextFlag.TextWordWrap)
READER_HEIGHT = 16 * MM
ROW = 5.2 * MM  # one identifier row


def font(size: float, bold: bool = False) -> QFont:
    out = QFont("DejaVu Sans")
    out.setPointSizeF(size)
    out.setBold(bold)
    return out


def paint_identifiers(painter: QPainter, width: float, y: float, facts: ReportFacts) -> float:
    """The identifier rows in two columns of "label  value"; returns the y below."""
    rows = facts.identifiers
    half = (len(rows) + 1) // 2
    col_w, label_w = width / 2, 28 * MM
    for k, (label, value) in enumerate(rows):
        x = 0 if k < half else col_w
        top = y + (k % half if half else 0) * ROW
        painter.setFont(font(9))
        painter.setPen(DIM)
        painter.drawText(QRectF(x, top, label_w, ROW), LEFT_MIDDLE, label)
        painter.setFont(font(9.5, bold=True))
        painter.setPen(DARK if value != "not recorded" else DIM)
        painter.drawText(QRectF(x + label_w, top, col_w - label_w, ROW), LEFT_MIDDLE, value)
    y += half * ROW
    painter.setFont(font(8))
    painter.setPen(DIM)
    for note in facts.notes:
        painter.drawText(QRectF(0, y, width, ROW), LEFT_MIDDLE, note)
        y += ROW
    painter.setPen(QPen(QColor(200, 204, 210), 0.3 * MM))
    painter.drawLine(0, int(y + 1 * MM), int(width), int(y + 1 * MM))
    return y + 3 * MM


def paint_answer(painter: QPainter, width: float, y: float, facts: ReportFacts) -> float:
    """ "Answer: Normal 92.0%" large, or "Withheld (indeterminate)" boxed with the reason."""
    answer = facts.answer
    if answer.withheld:  # the answer, then its reason wrapped under it (never overprinted)
        box = QRectF(0, y, width, 21 * MM)
        painter.setPen(QPen(WARN_EDGE, 0.5 * MM))
        painter.setBrush(WARN_FILL)
        painter.drawRect(box)
        painter.setPen(DARK)
        painter.setFont(font(13, bold=True))
        inner = box.adjusted(3 * MM, 1 * MM, -3 * MM, -1 * MM)
        painter.drawText(
            QRectF(inner.left(), inner.top(), inner.width(), 8 * MM),
            LEFT_MIDDLE,
            f"Answer: {answer.text}",
        )
        painter.setFont(font(8.5))
        reason = QRectF(inner.left(), inner.top() + 8 * MM, inner.width(), inner.height() - 8 * MM)
        painter.drawText(reason, WRAP, answer.reason)
        return box.bottom() + 3 * MM
    painter.setPen(DARK)
    painter.setFont(font(15, bold=True))
    painter.drawText(QRectF(0, y, width, 10 * MM), LEFT_MIDDLE, f"Answer: {answer.text}")
    return y + 12 * MM


def _fit(image: QImage, box: QRectF) -> QRectF:
    scale = min(box.width() / image.width(), box.height() / image.height())
    target = QRectF(0, 0, image.width() * scale, image.height() * scale)
    target.moveCenter(box.center())
    target.moveTop(box.top())
    return target


def _small(image: QImage) -> QImage:
    if max(image.width(), image.height()) > MAX_IMAGE_SIDE:
        return image.scaled(
            MAX_IMAGE_SIDE,
            MAX_IMAGE_SIDE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    return image


def paint_images(
    painter: QPainter,
    box: QRectF,
    shown: QImage,
    plain: QImage | None,
    explained_name: str | None,
    caption: str,
    facts: ReportFacts | None,
) -> float:
    """The image without and with the heat map side by side (one image when no map is
    shown), the colour scale under the heat map, the caption and what the map explains
    (boxed in red when it is not the answer). Returns the y below."""
    two = plain is not None and explained_name is not None and not plain.isNull()
    differs = facts.explained_differs if facts is not None else ""
    explained = facts.explained if facts is not None else ""
    extra = 6 * MM + (12 * MM if two else 0) + 6 * MM
    extra += (15 * MM if differs else 7 * MM) if explained else 0
    image_h = max(30 * MM, box.height() - extra)
    y = box.top()
    painter.setFont(font(9, bold=True))
    painter.setPen(DIM)
    if two:
        gap = 6 * MM
        half = (box.width() - gap) / 2
        left, right = (
            QRectF(0, y + 6 * MM, half, image_h),
            QRectF(half + gap, y + 6 * MM, half, image_h),
        )
        painter.drawText(QRectF(0, y, half, 5 * MM), LEFT_MIDDLE, "Image")
        painter.drawText(QRectF(left.right() + gap, y, half, 5 * MM), LEFT_MIDDLE, "With heat map")
        assert plain is not None
        drawn_left = _fit(_small(plain), left)
        painter.drawImage(drawn_left, _small(plain))
        drawn = _fit(_small(shown), right)
        painter.drawImage(drawn, _small(shown))
        y = max(drawn.bottom(), drawn_left.bottom()) + 2 * MM
        scale = QRectF(right.left(), y, right.width(), 10 * MM)
        paint_colour_scale(painter, scale, f"support for {explained_name}", DARK, font(7.5))
        y = scale.bottom() + 1 * MM
    else:
        drawn = _fit(_small(shown), QRectF(0, y, box.width(), image_h))
        if not shown.isNull():
            painter.drawImage(drawn, _small(shown))
        y = drawn.bottom() + 2 * MM
    painter.setPen(DIM)
    painter.setFont(font(8))
    painter.drawText(QRectF(0, y, box.width(), 5 * MM), LEFT_MIDDLE, caption)
    y += 6 * MM
    if differs:
        alert = QRectF(0, y, box.width(), 13 * MM)
        painter.setPen(QPen(ALERT_EDGE, 0.6 * MM))
        painter.setBrush(ALERT_FILL)
        painter.drawRect(alert)
        painter.setPen(DARK)
        painter.setFont(font(9.5, bold=True))
        flags = int(LEFT_MIDDLE) | int(Qt.TextFlag.TextWordWrap)
        painter.drawText(alert.adjusted(3 * MM, 1 * MM, -3 * MM, -1 * MM), flags, f"⚠ {differs}")
        y = alert.bottom() + 2 * MM
    elif explained:
        painter.setPen(DARK)
        painter.setFont(font(10, bold=True))
        painter.drawText(QRectF(0, y, box.width(), 6 * MM), LEFT_MIDDLE, explained)
        y += 7 * MM
    return y


def limitations_text(facts: ReportFacts) -> str:
    return "\n".join(f"• {line}" for line in facts.limitations)


def limitations_height(painter: QPainter, width: float, facts: ReportFacts) -> float:
    """Room the card's limits need (0 when the card states none)."""
    if not facts.limitations:
        return 0.0
    painter.setFont(font(7.5))
    rect = painter.boundingRect(QRectF(0, 0, width, 1000 * MM), WRAP, limitations_text(facts))
    return rect.height() + 6 * MM


def paint_limitations(painter: QPainter, width: float, y: float, facts: ReportFacts) -> float:
    """The model card's limitations, as the card states them."""
    if not facts.limitations:
        return y
    painter.setPen(DARK)
    painter.setFont(font(9, bold=True))
    painter.drawText(QRectF(0, y, width, 5 * MM), LEFT_MIDDLE, "Limits of this model (model card)")
    y += 5.5 * MM
    painter.setPen(DIM)
    painter.setFont(font(7.5))
    text = limitations_text(facts)
    rect = painter.boundingRect(QRectF(0, y, width, 1000 * MM), WRAP, text)
    painter.drawText(rect, WRAP, text)
    return rect.bottom()


def paint_reader(painter: QPainter, box: QRectF) -> None:
    """Reader, date and signature lines for the person who confirms the reading."""
    painter.setPen(DARK)
    painter.setFont(font(9.5, bold=True))
    third = box.width() / 3
    baseline = box.top() + 11 * MM
    for k, label in enumerate(("Reader", "Date", "Signature")):
        x = k * third
        painter.drawText(QRectF(x, box.top() + 5 * MM, third, 5 * MM), LEFT_MIDDLE, f"{label}:")
        painter.setPen(QPen(DIM, 0.25 * MM))
        painter.drawLine(int(x + 22 * MM), int(baseline), int(x + third - 4 * MM), int(baseline))
        painter.setPen(DARK)
