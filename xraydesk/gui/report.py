"""The one-page PDF report: the image as shown, the probabilities, the model, the notice."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from xraydesk import __version__
from xraydesk.classifier import Prediction
from xraydesk.errors import XRayDeskError
from xraydesk.explain.methods import method_label
from xraydesk.gui.report_sections import (
    ACCENT,
    DARK,
    DIM,
    DPI,
    LEFT_MIDDLE,
    MM,
    READER_HEIGHT,
    RIGHT_MIDDLE,
    font,
    limitations_height,
    paint_answer,
    paint_identifiers,
    paint_images,
    paint_limitations,
    paint_reader,
)
from xraydesk.imaging.xray import Window
from xraydesk.viewer.report_facts import NOT_FOR_DIAGNOSIS, ReportFacts
from xraydesk.viewer.windowing import format_window

REPORT_NOTICE = (
    "XRayDesk assists and does not diagnose. The probabilities and the heat map come from a "
    "machine-learning model and may be wrong; every finding must be confirmed by a qualified "
    "reader."
)


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
    # the radiology report's parts: the image without the heat map, and
    # the words (identifiers, answer, explained class, limits) decided in viewer.report_facts
    plain_image: QImage | None = None
    facts: ReportFacts | None = None
    explained_name: str | None = None  # the class the heat map explains, for its scale


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


def _paint(painter: QPainter, page: QSizeF, content: ReportContent) -> None:
    """Top to bottom: header with identifiers, warnings, the answer, the images (plain
    and with the heat map, its colour scale), what the map explains, probabilities, the
    model and its limits, the reader's sign-off, the notice."""
    width, height = page.width(), page.height()
    facts = content.facts
    y = _paint_header(painter, width, content)
    if facts is not None:
        y = paint_identifiers(painter, width, y, facts)
    y = _paint_warnings(painter, width, y, content.warnings)
    if facts is not None:
        y = paint_answer(painter, width, y, facts)
    bottom = height - 24 * MM - READER_HEIGHT
    below = (14 + 7 * len(content.prediction.probabilities)) * MM
    if facts is not None:
        below += limitations_height(painter, width, facts) + 2 * MM
    box = QRectF(0, y, width, max(50 * MM, bottom - y - below))
    y = paint_images(
        painter,
        box,
        content.image,
        content.plain_image,
        content.explained_name,
        caption_text(content),
        facts,
    )
    withheld = facts is not None and facts.answer.withheld
    y = _paint_probabilities(painter, width, y, content.prediction, withheld)
    if facts is not None:
        paint_limitations(painter, width, y + 2 * MM, facts)
    paint_reader(painter, QRectF(0, bottom, width, READER_HEIGHT))
    _paint_notice(painter, QRectF(0, height - 22 * MM, width, 22 * MM))


def _paint_header(painter: QPainter, width: float, content: ReportContent) -> float:
    """Title, date and source name above a rule; returns the y below it."""
    painter.setPen(DARK)
    painter.setFont(font(18, bold=True))
    painter.drawText(QRectF(0, 0, width, 12 * MM), Qt.AlignmentFlag.AlignLeft, "XRayDesk report")
    painter.setFont(font(9))
    painter.setPen(DIM)
    painter.drawText(
        QRectF(0, 0, width, 12 * MM), RIGHT_MIDDLE, content.created.strftime("%Y-%m-%d %H:%M")
    )
    y = 12 * MM
    painter.drawText(
        QRectF(0, y, width, 6 * MM), Qt.AlignmentFlag.AlignLeft, f"Image: {content.source_name}"
    )
    painter.setFont(font(9, bold=True))  # on the page whatever the heat map and answer
    painter.setPen(QColor(200, 120, 20))
    painter.drawText(QRectF(0, y, width, 6 * MM), Qt.AlignmentFlag.AlignRight, NOT_FOR_DIAGNOSIS)
    y += 7 * MM
    painter.setPen(QPen(QColor(200, 204, 210), 0.3 * MM))
    painter.drawLine(0, int(y), int(width), int(y))
    return y + 4 * MM


def _paint_warnings(painter: QPainter, width: float, y: float, warnings: list[str]) -> float:
    """Each reason not to trust the result, boxed above the image; returns the y below."""
    if not warnings:
        return y
    painter.setFont(font(9.5, bold=True))
    flags = int(LEFT_MIDDLE) | int(Qt.TextFlag.TextWordWrap)
    for text in warnings:
        box = QRectF(0, y, width, 11 * MM)
        painter.setPen(QPen(QColor(200, 120, 20), 0.4 * MM))
        painter.setBrush(QColor(255, 240, 215))
        painter.drawRect(box)
        painter.setPen(DARK)
        painter.drawText(box.adjusted(3 * MM, 1 * MM, -3 * MM, -1 * MM), flags, f"⚠ {text}")
        y += 12.5 * MM
    return y


def caption_text(content: ReportContent) -> str:
    """The line under the report's image: window and what the heat map shows (or why not)."""
    if content.heat_map:
        heat_map = f"Heat map: {content.heat_map}"
    else:
        heat_map = f"Heat map: {content.heat_map_note}" if content.heat_map_note else ""
        heat_map = heat_map or "Heat map not shown"
    return "  ·  ".join(part for part in (content.window, heat_map) if part)


def _paint_probabilities(
    painter: QPainter, width: float, y: float, prediction: Prediction, withheld: bool = False
) -> float:
    """One bar per class in the model's order (the prediction bold), then the model line;
    one line instead of the bars when the answer is withheld. Returns the y below."""
    painter.setPen(DARK)
    painter.setFont(font(10, bold=True))
    painter.drawText(QRectF(0, y, width, 6 * MM), LEFT_MIDDLE, "Probabilities")
    y += 6.5 * MM
    name_w, pct_w = 55 * MM, 22 * MM
    bar_w = width - name_w - pct_w - 4 * MM
    if withheld:
        painter.setFont(font(9))
        painter.drawText(
            QRectF(0, y, width, 6 * MM), LEFT_MIDDLE, "Not given: the result is withheld."
        )
        y += 7 * MM
    for class_id, probability in ({} if withheld else prediction.probabilities).items():
        predicted = class_id == prediction.predicted
        painter.setFont(font(9.5, bold=predicted))
        painter.setPen(DARK)
        name = prediction.display_names.get(class_id, class_id)
        painter.drawText(QRectF(0, y, name_w, 6 * MM), LEFT_MIDDLE, name)
        track = QRectF(name_w, y + 1.2 * MM, bar_w, 3.6 * MM)
        painter.fillRect(track, QColor(228, 231, 236))
        fill = QRectF(track)
        fill.setWidth(track.width() * probability)
        painter.fillRect(fill, ACCENT if predicted else QColor(150, 158, 170))
        pct = QRectF(width - pct_w, y, pct_w, 6 * MM)
        painter.drawText(pct, RIGHT_MIDDLE, f"{probability * 100:.1f}%")
        y += 7 * MM
    y += 1 * MM
    painter.setFont(font(8.5))
    painter.setPen(DIM)
    painter.drawText(
        QRectF(0, y, width, 5 * MM),
        LEFT_MIDDLE,
        f"Model: {prediction.model}   ·   Device: {prediction.device}   ·   XRayDesk {__version__}",
    )
    return y + 5 * MM


def _paint_notice(painter: QPainter, notice: QRectF) -> None:
    """The assists-not-diagnoses notice, boxed at the foot of the page."""
    painter.setPen(QPen(QColor(200, 120, 20), 0.4 * MM))
    painter.setBrush(QColor(255, 246, 230))
    painter.drawRect(notice)
    painter.setPen(DARK)
    painter.setFont(font(9.5, bold=True))
    painter.drawText(
        notice.adjusted(4 * MM, 3 * MM, -4 * MM, -3 * MM),
        int(LEFT_MIDDLE) | int(Qt.TextFlag.TextWordWrap),
        REPORT_NOTICE,
    )
