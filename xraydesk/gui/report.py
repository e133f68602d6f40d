"""The one-page PDF report: the image as shown, the probabilities, the model, the notice."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from xraydesk import __version__
from xraydesk.errors import XRayDeskError
from xraydesk.explain.methods import method_label
from xraydesk.imaging.xray import Window
from xraydesk.model.classifier import Prediction
from xraydesk.viewer.windowing import format_window

REPORT_NOTICE = (
    "XRayDesk assists and does not diagnose. The probabilities and the heat map come from a "
    "machine-learning model and may be wrong; every finding must be confirmed by a qualified "
    "reader."
)
DPI = 300
MAX_IMAGE_SIDE = 1600  # pixels embedded in the PDF: sharp in print, small files


@dataclass
class ReportContent:
    image: QImage  # as shown: window, inversion and heat map
    source_name: str
    prediction: Prediction
    heat_map: str | None = None  # "Pneumonia (opacity 45%)", or None when not shown
    heat_map_note: str = ""  # why there is none, e.g. the map was empty
    window: str = ""
    warnings: list[str] = field(default_factory=list)  # reasons not to trust the result
    created: _dt.datetime = field(default_factory=lambda: _dt.datetime.now().replace(microsecond=0))


def heat_map_text(
    prediction: Prediction, class_id: str, opacity: float, method: str = "gradcam"
) -> str:
    """How the report names the heat map shown on its image: the method (a key of
    ``explain.METHODS``), the class it explains and the opacity."""
    name = prediction.display_names.get(class_id, class_id)
    return f"{method_label(method)} for “{name}”, opacity {opacity * 100:.0f}%"


def window_text(window: Window | None, inverted: bool) -> str:
    """How the report names the display window ("" when there is none)."""
    if window is None:
        return ""
    return f"Window {format_window(window)}" + (" (inverted)" if inverted else "")


def write_report(path: Path, content: ReportContent) -> Path:
    """Write the report as a single A4 page; raises XRayDeskError naming the file on failure."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass  # fail early with a clear message if the folder is read-only
    except OSError as exc:
        raise XRayDeskError(f"{path}: cannot write the report ({exc.strerror or exc})") from exc
    writer = QPdfWriter(str(path))
    writer.setResolution(DPI)
    writer.setTitle(f"XRayDesk report: {content.source_name}")
    writer.setCreator(f"XRayDesk {__version__}")
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(15, 15, 15, 15),
            QPageLayout.Unit.Millimeter,
        )
    )
    painter = QPainter()
    if not painter.begin(writer):
        raise XRayDeskError(f"{path}: cannot write the report (the PDF could not be created)")
    try:
        _paint(painter, writer.pageLayout().paintRectPixels(DPI).size().toSizeF(), content)
    finally:
        painter.end()
    if not path.is_file() or path.stat().st_size == 0:
        raise XRayDeskError(f"{path}: the report could not be written")
    return path


def _font(size: float, bold: bool = False) -> QFont:
    font = QFont("DejaVu Sans")
    font.setPointSizeF(size)
    font.setBold(bold)
    return font


MM = DPI / 25.4  # device pixels per millimetre
DARK, DIM, ACCENT = QColor(20, 24, 30), QColor(95, 102, 112), QColor(30, 110, 200)
LEFT_MIDDLE = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT_MIDDLE = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def _paint(painter: QPainter, page: QSizeF, content: ReportContent) -> None:
    """Top to bottom: header, the image with its caption, probabilities, model, notice."""
    width, height = page.width(), page.height()
    y = _paint_header(painter, width, content)
    y = _paint_warnings(painter, width, y, content.warnings)
    # the image, as large as the page allows above the results
    results_height = (28 + 9 * len(content.prediction.probabilities)) * MM
    box = QRectF(0, y, width, height - y - results_height - 34 * MM)
    _paint_image(painter, box, content.image)
    y = box.bottom() + 3 * MM
    painter.setPen(DIM)
    painter.setFont(_font(8))
    painter.drawText(QRectF(0, y, width, 5 * MM), Qt.AlignmentFlag.AlignLeft, caption_text(content))
    y += 8 * MM
    _paint_probabilities(painter, width, y, content.prediction)
    _paint_notice(painter, QRectF(0, height - 24 * MM, width, 24 * MM))


def _paint_header(painter: QPainter, width: float, content: ReportContent) -> float:
    """Title, date and source name above a rule; returns the y below it."""
    painter.setPen(DARK)
    painter.setFont(_font(18, bold=True))
    painter.drawText(QRectF(0, 0, width, 12 * MM), Qt.AlignmentFlag.AlignLeft, "XRayDesk report")
    painter.setFont(_font(9))
    painter.setPen(DIM)
    painter.drawText(
        QRectF(0, 0, width, 12 * MM), RIGHT_MIDDLE, content.created.strftime("%Y-%m-%d %H:%M")
    )
    y = 12 * MM
    painter.drawText(
        QRectF(0, y, width, 6 * MM), Qt.AlignmentFlag.AlignLeft, f"Image: {content.source_name}"
    )
    y += 7 * MM
    painter.setPen(QPen(QColor(200, 204, 210), 0.3 * MM))
    painter.drawLine(0, int(y), int(width), int(y))
    return y + 4 * MM


def _paint_warnings(painter: QPainter, width: float, y: float, warnings: list[str]) -> float:
    """Each reason not to trust the result, boxed above the image; returns the y below."""
    if not warnings:
        return y
    painter.setFont(_font(9.5, bold=True))
    flags = int(LEFT_MIDDLE) | int(Qt.TextFlag.TextWordWrap)
    for text in warnings:
        box = QRectF(0, y, width, 13 * MM)
        painter.setPen(QPen(QColor(200, 120, 20), 0.4 * MM))
        painter.setBrush(QColor(255, 240, 215))
        painter.drawRect(box)
        painter.setPen(DARK)
        painter.drawText(box.adjusted(3 * MM, 1 * MM, -3 * MM, -1 * MM), flags, f"⚠ {text}")
        y += 15 * MM
    return y


def _paint_image(painter: QPainter, box: QRectF, image: QImage) -> None:
    """The image centred in ``box``, at most MAX_IMAGE_SIDE pixels a side."""
    if max(image.width(), image.height()) > MAX_IMAGE_SIDE:
        image = image.scaled(
            MAX_IMAGE_SIDE,
            MAX_IMAGE_SIDE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    if image.isNull():
        return
    scale = min(box.width() / image.width(), box.height() / image.height())
    target = QRectF(0, 0, image.width() * scale, image.height() * scale)
    target.moveCenter(box.center())
    painter.drawImage(target, image)


def caption_text(content: ReportContent) -> str:
    """The line under the report's image: window and what the heat map shows (or why not)."""
    if content.heat_map:
        heat_map = f"Heat map: {content.heat_map}"
    else:
        heat_map = f"Heat map: {content.heat_map_note}" if content.heat_map_note else ""
        heat_map = heat_map or "Heat map not shown"
    return "  ·  ".join(part for part in (content.window, heat_map) if part)


def _paint_probabilities(painter: QPainter, width: float, y: float, prediction: Prediction) -> None:
    """One bar per class in the model's order (the prediction bold), then the model line."""
    painter.setPen(DARK)
    painter.setFont(_font(11, bold=True))
    painter.drawText(QRectF(0, y, width, 7 * MM), Qt.AlignmentFlag.AlignLeft, "Probabilities")
    y += 8 * MM
    name_w, pct_w = 55 * MM, 22 * MM
    bar_w = width - name_w - pct_w - 4 * MM
    for class_id, probability in prediction.probabilities.items():
        predicted = class_id == prediction.predicted
        painter.setFont(_font(10, bold=predicted))
        painter.setPen(DARK)
        name = prediction.display_names.get(class_id, class_id)
        painter.drawText(QRectF(0, y, name_w, 7 * MM), LEFT_MIDDLE, name)
        track = QRectF(name_w, y + 1.5 * MM, bar_w, 4 * MM)
        painter.fillRect(track, QColor(228, 231, 236))
        fill = QRectF(track)
        fill.setWidth(track.width() * probability)
        painter.fillRect(fill, ACCENT if predicted else QColor(150, 158, 170))
        pct = QRectF(width - pct_w, y, pct_w, 7 * MM)
        painter.drawText(pct, RIGHT_MIDDLE, f"{probability * 100:.1f}%")
        y += 9 * MM
    y += 2 * MM
    painter.setFont(_font(9))
    painter.setPen(DIM)
    painter.drawText(
        QRectF(0, y, width, 6 * MM),
        Qt.AlignmentFlag.AlignLeft,
        f"Model: {prediction.model}   ·   Device: {prediction.device}   ·   XRayDesk {__version__}",
    )


def _paint_notice(painter: QPainter, notice: QRectF) -> None:
    """The assists-not-diagnoses notice, boxed at the foot of the page."""
    painter.setPen(QPen(QColor(200, 120, 20), 0.4 * MM))
    painter.setBrush(QColor(255, 246, 230))
    painter.drawRect(notice)
    painter.setPen(DARK)
    painter.setFont(_font(9.5, bold=True))
    painter.drawText(
        notice.adjusted(4 * MM, 3 * MM, -4 * MM, -3 * MM),
        int(LEFT_MIDDLE) | int(Qt.TextFlag.TextWordWrap),
        REPORT_NOTICE,
    )
