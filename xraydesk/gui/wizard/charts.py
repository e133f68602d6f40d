"""Small charts drawn with QPainter: training curves, ROC curves, a confusion matrix.

PySide6-Essentials has no QtCharts, and these need little: lines, a grid, a legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QHeaderView, QSizePolicy, QTableWidget, QTableWidgetItem, QWidget

# Colour-blind-safe (Okabe-Ito) series colours.
SERIES_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    color: QColor
    dashed: bool = False


class LineChart(QWidget):
    """Line series on linear axes; fixed ranges where given, otherwise fitted to the data."""

    def __init__(
        self,
        title: str,
        x_label: str = "",
        y_label: str = "",
        x_range: tuple[float, float] | None = None,
        y_range: tuple[float, float] | None = None,
        diagonal: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.x_label, self.y_label = x_label, y_label
        self.x_range, self.y_range = x_range, y_range
        self.diagonal = diagonal
        self._series: dict[str, Series] = {}
        self.setMinimumSize(240, 170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(360, 230)

    # -- data -------------------------------------------------------------------------------
    def set_series(
        self,
        name: str,
        points: Sequence[tuple[float, float]],
        color: str | QColor | None = None,
        dashed: bool = False,
    ) -> None:
        if color is None:
            existing = self._series.get(name)
            color = existing.color if existing else SERIES_COLORS[len(self._series) % 7]
        clean = [(float(x), float(y)) for x, y in points if math.isfinite(x) and math.isfinite(y)]
        self._series[name] = Series(name, clean, QColor(color), dashed)
        self.update()

    def add_point(
        self, name: str, x: float, y: float, color: str | None = None, dashed: bool = False
    ) -> None:
        current = self._series.get(name)
        points = [*current.points, (x, y)] if current else [(x, y)]
        self.set_series(name, points, color or (current.color if current else None), dashed)

    def clear(self) -> None:
        self._series.clear()
        self.update()

    def series(self, name: str) -> list[tuple[float, float]]:
        return list(self._series[name].points) if name in self._series else []

    def series_names(self) -> list[str]:
        return list(self._series)

    # -- drawing ------------------------------------------------------------------------------
    def _ranges(self) -> tuple[float, float, float, float]:
        xs = [x for s in self._series.values() for x, _ in s.points]
        ys = [y for s in self._series.values() for _, y in s.points]
        x0, x1 = self.x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
        y0, y1 = self.y_range or ((min(ys), max(ys)) if ys else (0.0, 1.0))
        if x1 - x0 < 1e-9:
            x0, x1 = x0 - 0.5, x1 + 0.5
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 0.5, y1 + 0.5
        if self.y_range is None:  # a little air above and below the data
            pad = 0.05 * (y1 - y0)
            y0, y1 = y0 - pad, y1 + pad
        return x0, x1, y0, y1

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        grid = QColor(text)
        grid.setAlpha(40)
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        metrics = painter.fontMetrics()
        line_h = metrics.height()
        left = metrics.horizontalAdvance("0.000") + 12 + (line_h + 2 if self.y_label else 0)
        plot = QRectF(self.rect()).adjusted(left, line_h + 10, -12, -(2 * line_h + 8))
        if plot.width() < 20 or plot.height() < 20:
            return
        x0, x1, y0, y1 = self._ranges()

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(
                plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                plot.bottom() - (y - y0) / (y1 - y0) * plot.height(),
            )

        painter.setPen(text)
        painter.drawText(
            QRectF(0, 2, self.width(), line_h), Qt.AlignmentFlag.AlignHCenter, self.title
        )
        for k in range(5):  # grid and tick labels
            fy = y0 + (y1 - y0) * k / 4
            fx = x0 + (x1 - x0) * k / 4
            py, px = to_px(x0, fy).y(), to_px(fx, y0).x()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(plot.left(), py), QPointF(plot.right(), py))
            painter.drawLine(QPointF(px, plot.top()), QPointF(px, plot.bottom()))
            painter.setPen(text)
            painter.drawText(
                QRectF(0, py - line_h / 2, plot.left() - 4, line_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                _tick(fy),
            )
            painter.drawText(
                QRectF(px - 30, plot.bottom() + 2, 60, line_h),
                Qt.AlignmentFlag.AlignHCenter,
                _tick(fx),
            )
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + line_h + 2, plot.width(), line_h),
            Qt.AlignmentFlag.AlignHCenter,
            self.x_label,
        )
        if self.y_label:  # rotated, along the left edge
            painter.save()
            painter.translate(2, plot.center().y())
            painter.rotate(-90)
            painter.drawText(
                QRectF(-plot.height() / 2, 0, plot.height(), line_h),
                Qt.AlignmentFlag.AlignHCenter,
                self.y_label,
            )
            painter.restore()
        painter.setPen(QPen(text, 1))
        painter.drawRect(plot)
        if self.diagonal:
            painter.setPen(QPen(grid, 1, Qt.PenStyle.DashLine))
            painter.drawLine(to_px(0, 0), to_px(1, 1))
        painter.setClipRect(plot.adjusted(-3, -3, 3, 3))
        for s in self._series.values():
            if not s.points:
                continue
            pen = QPen(s.color, 2, Qt.PenStyle.DashLine if s.dashed else Qt.PenStyle.SolidLine)
            painter.setPen(pen)
            path = QPainterPath(to_px(*s.points[0]))
            for x, y in s.points[1:]:
                path.lineTo(to_px(x, y))
            painter.drawPath(path)
            if len(s.points) <= 30:  # few points (per-epoch values): mark them
                painter.setBrush(s.color)
                for x, y in s.points:
                    painter.drawEllipse(to_px(x, y), 2.5, 2.5)
                painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setClipping(False)
        self._legend(painter, plot, line_h, text)
        painter.end()

    def _legend(self, painter: QPainter, plot: QRectF, line_h: int, text: QColor) -> None:
        y = plot.top() + 4
        for s in self._series.values():
            label_w = painter.fontMetrics().horizontalAdvance(s.name)
            x = plot.right() - label_w - 28
            painter.setPen(
                QPen(s.color, 2, Qt.PenStyle.DashLine if s.dashed else Qt.PenStyle.SolidLine)
            )
            painter.drawLine(QPointF(x, y + line_h / 2), QPointF(x + 18, y + line_h / 2))
            painter.setPen(text)
            painter.drawText(QRectF(x + 22, y, label_w + 4, line_h), s.name)
            y += line_h


def _tick(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


class ConfusionMatrixTable(QTableWidget):
    """Counts with a shade per cell: the share of its true class (row) that went there."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setToolTip("Rows: true class. Columns: predicted class.")

    def set_matrix(self, matrix: Sequence[Sequence[int]], names: Sequence[str]) -> None:
        n = len(names)
        self.setRowCount(n)
        self.setColumnCount(n)
        self.setHorizontalHeaderLabels([_short(name) for name in names])
        self.setVerticalHeaderLabels(list(names))
        for c, name in enumerate(names):
            self.horizontalHeaderItem(c).setToolTip(f"predicted {name}")
        for r, row in enumerate(matrix):
            total = max(sum(row), 1)
            for c, count in enumerate(row):
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                share = count / total
                color = QColor("#009E73" if r == c else "#D55E00")
                color.setAlphaF(0.15 + 0.65 * share if count else 0.0)
                item.setBackground(color)
                item.setToolTip(f"true {names[r]}, predicted {names[c]}: {count} ({share:.0%})")
                self.setItem(r, c, item)

    def counts(self) -> list[list[int]]:
        return [
            [int(self.item(r, c).text()) for c in range(self.columnCount())]
            for r in range(self.rowCount())
        ]


def _short(name: str) -> str:
    """A column header that fits: 'Bacterial pneumonia' -> 'Bacterial'."""
    return name.split()[0] if len(name) > 12 else name
