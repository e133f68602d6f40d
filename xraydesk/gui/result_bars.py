"""The results panel's drawn pieces: one bar per class and the heat map's colour scale."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from xraydesk.explain import blend_overlay

NOTICE = "XRayDesk assists and does not diagnose."
ACCENT = QColor(74, 163, 255)
BAR_TRACK = QColor(52, 58, 68)
BAR_FILL = QColor(110, 124, 145)


def section_title(text: str) -> QLabel:
    label = QLabel(text.upper())
    label.setObjectName("sectionTitle")
    return label


class ProbabilityBar(QWidget):
    """One class: its name, a bar and the percentage; the predicted one is highlighted."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.probability = 0.0
        self.predicted = False
        self.setMinimumHeight(30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_value(self, probability: float, predicted: bool) -> None:
        self.probability = probability
        self.predicted = predicted
        self.setToolTip(f"{self.name}: {probability * 100:.1f}%")
        self.update()

    @property
    def percent_text(self) -> str:
        return f"{self.probability * 100:.1f}%"

    def sizeHint(self) -> QSize:
        return QSize(260, 34)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if not self.isEnabled():  # shown "anyway" past a failed input gate: greyed
            painter.setOpacity(0.4)
        font = QFont(self.font())
        font.setBold(self.predicted)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        rect = self.rect()
        text_h = metrics.height()
        # first line: name (left) and percent (right); second line: the bar
        text_color = QColor(255, 255, 255) if self.predicted else QColor(200, 206, 214)
        painter.setPen(text_color)
        name = ("▶ " if self.predicted else "") + self.name
        painter.drawText(QRectF(0, 0, rect.width() - 70, text_h), Qt.AlignmentFlag.AlignLeft, name)
        painter.drawText(
            QRectF(rect.width() - 70, 0, 70, text_h), Qt.AlignmentFlag.AlignRight, self.percent_text
        )
        bar = QRectF(0, text_h + 3, rect.width(), max(6.0, rect.height() - text_h - 5))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BAR_TRACK)
        painter.drawRoundedRect(bar, 3, 3)
        filled = QRectF(bar)
        filled.setWidth(bar.width() * min(max(self.probability, 0.0), 1.0))
        if filled.width() > 0.5:
            painter.setBrush(ACCENT if self.predicted else BAR_FILL)
            painter.drawRoundedRect(filled, 3, 3)
        painter.end()


class ColorScaleLegend(QWidget):
    """The heat map's colour scale, drawn by the overlay's own blend over mid-grey film:
    the low end shows as untinted film, as it does on the image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        ramp = np.linspace(0.0, 1.0, 33, dtype=np.float32)[None, :]
        swatch = blend_overlay(np.full_like(ramp, 0.45), ramp, 1.0)[0]
        self._gradient_colors = [QColor(*map(int, rgb)) for rgb in swatch]
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(240, 36)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = self.rect()
        bar = QRectF(0, 0, rect.width(), 12)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        last = len(self._gradient_colors) - 1
        for i, color in enumerate(self._gradient_colors):
            gradient.setColorAt(i / last, color)
        painter.fillRect(bar, gradient)
        painter.setPen(QPen(QColor(90, 96, 106)))
        painter.drawRect(bar.adjusted(0, 0, -1, -1))
        painter.setPen(QColor(170, 176, 186))
        text = QRectF(0, 14, rect.width(), rect.height() - 14)
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft, "low")
        painter.drawText(text, Qt.AlignmentFlag.AlignHCenter, "model attention")
        painter.drawText(text, Qt.AlignmentFlag.AlignRight, "high")
        painter.end()
