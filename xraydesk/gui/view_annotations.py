"""What ``ImageView`` paints over the image: the four corner texts and the loupe.

A mixin of ``ImageView`` (it uses the view's ``state``, ``_xray``, ``_scene``, ``_cursor``,
``_overlay`` and its text attributes); the layout rules live in ``view_overlay``.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter

from xraydesk.gui.corner_overlay import corner_lines
from xraydesk.gui.view_orientation import orientation_transform
from xraydesk.gui.view_overlay import (
    draw_corners,
    draw_ring,
    ellipse_clip,
    loupe_target,
    top_right_text,
)
from xraydesk.viewer.measure import patient_text
from xraydesk.viewer.windowing import format_window

LOUPE_SIZE, LOUPE_ZOOM = 220, 3.0  # screen pixels across, magnification over the view


class ViewAnnotations:
    """Corner annotations, as on a reading-room viewer, and the magnifier."""

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        painter.save()
        painter.resetTransform()
        area = self.viewport().rect().adjusted(12, 10, -12, -10)
        font = QFont(self.font())
        if self._xray is None:
            font.setPointSizeF(font.pointSizeF() * 1.3)
            painter.setFont(font)
            painter.setPen(QColor(150, 160, 175))
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, self.empty_text)
            painter.restore()
            return
        painter.setFont(font)
        window = self.state.window
        lines_left = []
        if window is not None:
            preset = f"  ({self.state.preset})" if self.state.preset else ""
            lines_left.append(f"{format_window(window)}{preset}")
        lines_left.append(f"Zoom {self.state.zoom * 100:.0f}%")
        if self.state.invert:
            lines_left.append("Inverted")
        if self.heat_caption and self._overlay.isVisible():
            lines_left.append(f"{self.heat_caption}, {self.state.overlay_opacity * 100:.0f}%")
        top_right, bottom_right = corner_lines(self)
        top_right = top_right_text(self.busy_text or self.title_text, top_right)
        texts = ("\n".join(lines_left), top_right, self.patient_line, bottom_right)
        draw_corners(painter, QRectF(area), texts)  # laid out so that none overlaps
        if self.magnifier and self._cursor is not None:
            self._draw_loupe(painter)
        painter.restore()

    @property
    def patient_line(self) -> str:
        """Non-identifying age and sex from the file ("female, 68 years"), bottom left."""
        return patient_text(self._xray.metadata) if self._xray is not None else ""

    def _draw_loupe(self, painter: QPainter) -> None:
        """A round magnifier centred on the cursor: LOUPE_ZOOM times the view's scale."""
        assert self._cursor is not None
        centre = self.mapToScene(self._cursor.toPoint())
        centre += self._cursor - QPointF(self._cursor.toPoint())  # keep the sub-pixel part
        half = LOUPE_SIZE / 2.0 / (self.state.zoom * LOUPE_ZOOM)
        source = QRectF(centre.x() - half, centre.y() - half, 2 * half, 2 * half)
        target = loupe_target(self._cursor, LOUPE_SIZE)
        painter.save()
        painter.setClipPath(ellipse_clip(target))
        painter.fillRect(target, QColor(0, 0, 0))
        painter.translate(target.center())  # turned and mirrored like the view
        painter.setTransform(orientation_transform(self.state.orientation), True)
        square = QRectF(-LOUPE_SIZE / 2.0, -LOUPE_SIZE / 2.0, LOUPE_SIZE, LOUPE_SIZE)
        self._scene.render(painter, square, source)
        painter.restore()
        draw_ring(painter, target)
