"""The one-page PDF report: the image as shown, the probabilities, the model, the notice."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from xraydesk import __version__
from xraydesk.errors import XRayDeskError
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
    window: str = ""
    created: _dt.datetime = field(default_factory=lambda: _dt.datetime.now().replace(microsecond=0))


def heat_map_text(prediction: Prediction, class_id: str, opacity: float) -> str:
    """How the report names the heat map shown on its image."""
    name = prediction.display_names.get(class_id, class_id)
    return f"Grad-CAM for “{name}”, opacity {opacity * 100:.0f}%"


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


def _paint(painter: QPainter, page: QSizeF, content: ReportContent) -> None:
    width, height = page.width(), page.height()
    mm = DPI / 25.4
    y = 0.0
    dark, dim, accent = QColor(20, 24, 30), QColor(95, 102, 112), QColor(30, 110, 200)

    painter.setPen(dark)
    painter.setFont(_font(18, bold=True))
    painter.drawText(QRectF(0, y, width, 12 * mm), Qt.AlignmentFlag.AlignLeft, "XRayDesk report")
    painter.setFont(_font(9))
    painter.setPen(dim)
    painter.drawText(
        QRectF(0, y, width, 12 * mm),
        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
        content.created.strftime("%Y-%m-%d %H:%M"),
    )
    y += 12 * mm
    painter.drawText(
        QRectF(0, y, width, 6 * mm), Qt.AlignmentFlag.AlignLeft, f"Image: {content.source_name}"
    )
    y += 7 * mm
    painter.setPen(QPen(QColor(200, 204, 210), 0.3 * mm))
    painter.drawLine(0, int(y), int(width), int(y))
    y += 4 * mm

    # the image, as large as the page allows above the results
    results_height = (28 + 9 * len(content.prediction.probabilities)) * mm
    box = QRectF(0, y, width, height - y - results_height - 34 * mm)
    image = content.image
    if max(image.width(), image.height()) > MAX_IMAGE_SIDE:
        image = image.scaled(
            MAX_IMAGE_SIDE,
            MAX_IMAGE_SIDE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    if not image.isNull():
        scale = min(box.width() / image.width(), box.height() / image.height())
        target = QRectF(0, 0, image.width() * scale, image.height() * scale)
        target.moveCenter(box.center())
        painter.drawImage(target, image)
    y = box.bottom() + 3 * mm
    painter.setPen(dim)
    painter.setFont(_font(8))
    caption = "  ·  ".join(
        part
        for part in (
            content.window,
            f"Heat map: {content.heat_map}" if content.heat_map else "Heat map not shown",
        )
        if part
    )
    painter.drawText(QRectF(0, y, width, 5 * mm), Qt.AlignmentFlag.AlignLeft, caption)
    y += 8 * mm

    # probabilities
    prediction = content.prediction
    painter.setPen(dark)
    painter.setFont(_font(11, bold=True))
    painter.drawText(QRectF(0, y, width, 7 * mm), Qt.AlignmentFlag.AlignLeft, "Probabilities")
    y += 8 * mm
    name_w, pct_w = 55 * mm, 22 * mm
    bar_w = width - name_w - pct_w - 4 * mm
    for class_id, probability in prediction.probabilities.items():  # the model's order
        predicted = class_id == prediction.predicted
        painter.setFont(_font(10, bold=predicted))
        painter.setPen(dark)
        name = prediction.display_names.get(class_id, class_id)
        row = QRectF(0, y, name_w, 7 * mm)
        painter.drawText(row, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        track = QRectF(name_w, y + 1.5 * mm, bar_w, 4 * mm)
        painter.fillRect(track, QColor(228, 231, 236))
        fill = QRectF(track)
        fill.setWidth(track.width() * probability)
        painter.fillRect(fill, accent if predicted else QColor(150, 158, 170))
        painter.drawText(
            QRectF(width - pct_w, y, pct_w, 7 * mm),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            f"{probability * 100:.1f}%",
        )
        y += 9 * mm
    y += 2 * mm
    painter.setFont(_font(9))
    painter.setPen(dim)
    painter.drawText(
        QRectF(0, y, width, 6 * mm),
        Qt.AlignmentFlag.AlignLeft,
        f"Model: {prediction.model}   ·   Device: {prediction.device}   ·   XRayDesk {__version__}",
    )

    # the notice, boxed at the foot of the page
    notice = QRectF(0, height - 24 * mm, width, 24 * mm)
    painter.setPen(QPen(QColor(200, 120, 20), 0.4 * mm))
    painter.setBrush(QColor(255, 246, 230))
    painter.drawRect(notice)
    painter.setPen(dark)
    painter.setFont(_font(9.5, bold=True))
    painter.drawText(
        notice.adjusted(4 * mm, 3 * mm, -4 * mm, -3 * mm),
        int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        | int(Qt.TextFlag.TextWordWrap),
        REPORT_NOTICE,
    )
