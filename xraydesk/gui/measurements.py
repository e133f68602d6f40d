"""The reading tools on the image: distance ruler, angle and cardiothoracic ratio.

``Measurement`` is one drawn measurement (points in image pixels, its line and label);
``MeasuringTools`` is the part of ``ImageView`` that turns left clicks into measurements
(it uses the view's ``_scene``, ``_xray``, ``tool``, ``measurements`` and ``_draft``).
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
)

from xraydesk.gui.view_overlay import away_from, label_shift
from xraydesk.viewer.ctr import CTR_POINTS, ctr_text
from xraydesk.viewer.measure import Point, angle_degrees, distance_text


class Tool(StrEnum):
    """What a left drag on the image does: pan, or place a measurement's points."""

    PAN = "pan"
    RULER = "ruler"
    ANGLE = "angle"
    CTR = "ctr"  # cardiothoracic ratio


TOOL_PAN, TOOL_RULER, TOOL_ANGLE, TOOL_CTR = Tool.PAN, Tool.RULER, Tool.ANGLE, Tool.CTR
POINTS_NEEDED = {TOOL_RULER: 2, TOOL_ANGLE: 3, TOOL_CTR: CTR_POINTS}
MEASURE_COLOUR = QColor(90, 220, 255)


class Measurement:
    """One ruler or angle on the image: its points (image pixels), its line and label."""

    def __init__(self, scene: QGraphicsScene, kind: str) -> None:
        self.kind = kind
        self.points: list[Point] = []
        pen = QPen(MEASURE_COLOUR, 2)
        pen.setCosmetic(True)  # two screen pixels wide at any zoom
        self.path = QGraphicsPathItem()
        self.path.setPen(pen)
        self.path.setZValue(2.0)
        self.label = QGraphicsSimpleTextItem()
        self.label.setBrush(MEASURE_COLOUR)
        outline = QPen(QColor(0, 0, 0, 220), 0)  # readable over lung and bone alike
        self.label.setPen(outline)
        font = self.label.font()
        font.setBold(True)
        self.label.setFont(font)
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.label.setZValue(2.0)
        scene.addItem(self.path)
        scene.addItem(self.label)
        self.text = ""
        self.view_position: str | None = None  # for the CTR's PA/AP remark

    def update(self, points: list[Point], spacing: tuple[float, float] | None) -> None:
        self.points = list(points)
        path = QPainterPath(QPointF(*points[0]))
        for i, point in enumerate(points[1:], start=1):
            if self.kind == TOOL_CTR and i == 2:  # the CTR's second line starts apart
                path.moveTo(QPointF(*point))
            else:
                path.lineTo(QPointF(*point))
        self.path.setPath(path)
        if self.kind == TOOL_CTR:
            self.text = ctr_text(points, spacing, self.view_position)
        elif self.kind == TOOL_RULER and len(points) == 2:
            self.text = distance_text(points[0], points[1], spacing)
        elif self.kind == TOOL_ANGLE and len(points) == 3:
            self.text = f"{angle_degrees(points[0], points[1], points[2], spacing):.1f}°"
        else:
            self.text = ""
        self.label.setText(self.text)
        anchor = points[1] if self.kind == TOOL_ANGLE and len(points) > 1 else points[-1]
        self.label.setPos(QPointF(anchor[0], anchor[1]))
        # beside the point in screen pixels (the label ignores the zoom): off the lines
        box = self.label.boundingRect()
        direction = away_from(points, self.kind == TOOL_ANGLE)
        shift = label_shift(direction, box.width(), box.height())
        if self.kind == TOOL_CTR:  # a long label: below the thorax line, not over it
            shift = QPointF(-self.label.boundingRect().width(), 10)
        self.label.setTransform(QTransform.fromTranslate(shift.x(), shift.y()))

    def remove(self, scene: QGraphicsScene) -> None:
        scene.removeItem(self.path)
        scene.removeItem(self.label)


class MeasuringTools:
    """Tool choice and measuring clicks for ``ImageView``."""

    def set_tool(self, tool: str) -> None:
        """Pan (left drag moves the image), distance ruler or angle (left clicks measure)."""
        if tool not in (TOOL_PAN, *POINTS_NEEDED):
            raise ValueError(f"unknown tool {tool!r}")
        self._cancel_draft()
        self.tool = tool
        pan = tool == TOOL_PAN
        self.setDragMode(
            QGraphicsView.DragMode.ScrollHandDrag if pan else QGraphicsView.DragMode.NoDrag
        )
        if pan:
            self.viewport().unsetCursor()
        else:
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def clear_measurements(self) -> None:
        self._cancel_draft()
        for measurement in self.measurements:
            measurement.remove(self._scene)
        self.measurements.clear()

    def measurement_texts(self) -> list[str]:
        return [m.text for m in self.measurements]

    def _spacing(self) -> tuple[float, float] | None:
        return self._xray.metadata.pixel_spacing if self._xray is not None else None

    def _cancel_draft(self) -> None:
        if self._draft is not None:
            self._draft.remove(self._scene)
            self._draft = None

    def _measure_press(self, scene: QPointF) -> None:
        point = (scene.x(), scene.y())
        needed = POINTS_NEEDED[self.tool]
        if self._draft is None:
            self._draft = Measurement(self._scene, self.tool)
            if self._xray is not None:
                self._draft.view_position = self._xray.metadata.view_position
            self._draft.update([point, point], self._spacing())
            return
        points = [*self._draft.points[:-1], point]
        if len(points) >= needed:
            self._draft.update(points, self._spacing())
            self.measurements.append(self._draft)
            self._draft = None
        else:
            self._draft.update([*points, point], self._spacing())

    def _measure_move(self, scene: QPointF) -> None:
        if self._draft is not None:
            self._draft.update([*self._draft.points[:-1], (scene.x(), scene.y())], self._spacing())

    def _measure_release(self, scene: QPointF) -> None:
        """A ruler can be drawn by dragging: releasing away from the start ends it."""
        draft = self._draft
        if draft is None or self.tool != TOOL_RULER or len(draft.points) != 2:
            return
        start = self.mapFromScene(QPointF(*draft.points[0]))
        if (start - self.mapFromScene(scene)).manhattanLength() > 4:
            self._measure_press(scene)
