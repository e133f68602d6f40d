"""The radiograph on screen: zoom, pan, window/level by right-drag, heat-map layer.

Window/level is always applied to the full-depth float pixels through ``XRay.render``;
the result drops to 8 bits only for display. While the right button is held on a large
image, a subsampled copy is windowed instead (at most 1.5 megapixels), so the
gesture keeps up with the mouse; releasing the button renders the full image.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from xraydesk.gui.corner_overlay import corner_lines
from xraydesk.gui.qt_images import DisplayImage, render_display
from xraydesk.gui.view_orientation import orientation_transform
from xraydesk.gui.view_overlay import (
    away_from,
    draw_corners,
    draw_ring,
    ellipse_clip,
    label_shift,
    loupe_target,
    top_right_text,
)
from xraydesk.imaging.xray import XRay
from xraydesk.viewer.ctr import CTR_POINTS, ctr_text
from xraydesk.viewer.measure import Point, angle_degrees, distance_text, patient_text
from xraydesk.viewer.orientation import Orientation
from xraydesk.viewer.viewstate import ViewState, clamp_zoom
from xraydesk.viewer.windowing import PRESET_FILE, WindowPresets, dragged_window, format_window

# Images above PREVIEW_ABOVE pixels are windowed from a subsampled copy of at most
# PREVIEW_PIXELS while the right button is held: about 10 ms a frame on a laptop CPU.
# A 1024 x 1024 CR renders in full that fast, so only large DX detectors get previews.
PREVIEW_ABOVE = 4_200_000
PREVIEW_PIXELS = 1_500_000
WHEEL_ZOOM_PER_NOTCH = 1.2
EMPTY_TEXT = "Open a chest radiograph\nFile › Open (Ctrl+O), or drop a file here"
TOOL_PAN, TOOL_RULER, TOOL_ANGLE, TOOL_CTR = "pan", "ruler", "angle", "ctr"
POINTS_NEEDED = {TOOL_RULER: 2, TOOL_ANGLE: 3, TOOL_CTR: CTR_POINTS}
MEASURE_COLOUR = QColor(90, 220, 255)
LOUPE_SIZE, LOUPE_ZOOM = 220, 3.0  # screen pixels across, magnification over the view


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


class ImageView(QGraphicsView):
    """Shows one XRay under a ViewState; emits what lies under the cursor."""

    cursor_moved = Signal(object)  # (column, row, value) or None outside the image
    window_drag_finished = Signal()

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._base = QGraphicsPixmapItem()
        self._base.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._overlay = QGraphicsPixmapItem()
        self._overlay.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._overlay.setZValue(1.0)
        self._scene.addItem(self._base)
        self._scene.addItem(self._overlay)
        self._xray: XRay | None = None
        self._preview: XRay | None = None  # subsampled copy for fast drags
        self._preview_step = 1
        self._presets: WindowPresets | None = None
        self._drag_origin: QPoint | None = None
        self._drag_window = None
        self._base_display: DisplayImage | None = None
        self._overlay_display: DisplayImage | None = None
        self._base_is_preview = False
        self._suspend_render = False
        self.tool = TOOL_PAN
        self.measurements: list[Measurement] = []
        self._draft: Measurement | None = None  # the measurement being drawn
        self.magnifier = False
        self._cursor: QPointF | None = None  # last cursor position, for the loupe
        self.busy_text = ""  # shown in the corner while work is under way
        self.empty_text = EMPTY_TEXT  # centred while no image is shown
        self.title_text = ""  # top right when not busy, e.g. the compared study's name
        self.heat_caption = ""  # what the heat map explains, e.g. "Heat map: Pneumonia"
        self.identity_shown = False  # patient identity in the corner text (asked for)
        self.corners_shown = True  # the four-corner information text

        self.setBackgroundBrush(QColor(0, 0, 0))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setAcceptDrops(False)  # the main window takes drops
        self.viewport().setAcceptDrops(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        # the corner text is drawn in viewport coordinates: a pan must repaint it in place
        # rather than scroll the old pixels (text and all) along with the image
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        state.subscribe(self._on_state_changed)

    # -- content --------------------------------------------------------------------------
    @property
    def xray(self) -> XRay | None:
        return self._xray

    @property
    def presets(self) -> WindowPresets | None:
        return self._presets

    def set_image(
        self, xray: XRay, presets: WindowPresets, display: DisplayImage | None = None
    ) -> None:
        """Show a new image with the file's window, fitted to the view, without a heat map.

        ``display`` is the image already rendered with the file's window (the worker
        does that off the GUI thread); without it the view renders here.
        """
        self._xray = xray
        self._presets = presets
        rows, cols = xray.shape
        if rows * cols > PREVIEW_ABOVE:
            self._preview_step = max(2, math.ceil(math.sqrt(rows * cols / PREVIEW_PIXELS)))
            preview_pixels = xray.pixels[:: self._preview_step, :: self._preview_step]
            self._preview = dataclasses.replace(xray, pixels=preview_pixels)
        else:
            self._preview, self._preview_step = None, 1
        self.set_heat_layer(None)
        self.clear_measurements()
        self._suspend_render = True  # the new window is rendered once, below
        try:
            self.state.update(
                window=xray.window, preset=PRESET_FILE, invert=False, orientation=Orientation()
            )
        finally:
            self._suspend_render = False
        if display is not None:
            self._show_base(display, 1.0)
        else:
            self.render_image()
        # room around the image, so zooming keeps the point under the cursor even near an
        # edge, and the image can be panned partly out of view as on a light box
        margin = float(max(rows, cols))
        self._scene.setSceneRect(QRectF(-margin, -margin, cols + 2 * margin, rows + 2 * margin))
        self.state.update(fit=True)
        self.fit()

    def clear(self) -> None:
        self.clear_measurements()
        self._xray = self._preview = self._presets = None
        self._base.setPixmap(QPixmap())
        self._base_display = None
        self.set_heat_layer(None)
        self.viewport().update()

    def set_heat_layer(self, layer: DisplayImage | None, caption: str = "") -> None:
        """The heat map as a premultiplied layer of the source's size (None: remove).

        ``caption`` says what it explains; it is written in the corner while it shows.
        """
        pixmap = QPixmap.fromImage(layer.image) if layer is not None else QPixmap()
        self._overlay.setPixmap(pixmap)
        self._overlay_display = layer  # keeps the pixels the pixmap may share alive
        self.heat_caption = caption if layer is not None else ""
        self._apply_overlay_state()
        self.viewport().update()

    @property
    def has_heat_layer(self) -> bool:
        return not self._overlay.pixmap().isNull()

    def render_image(self, preview: bool = False) -> None:
        """Window the full-depth pixels (or the drag preview) and show the result."""
        if self._xray is None or self.state.window is None:
            return
        if self._suspend_render:
            return
        use_preview = preview and self._preview is not None
        source = self._preview if use_preview else self._xray
        assert source is not None
        display = render_display(source, self.state.window, self.state.invert)
        self._show_base(display, float(self._preview_step) if use_preview else 1.0)

    def _show_base(self, display: DisplayImage, scale: float) -> None:
        self._base.setPixmap(QPixmap.fromImage(display.image))
        self._base_display = display  # keeps the pixels the pixmap may share alive
        self._base.setScale(scale)
        self._base_is_preview = scale != 1.0
        self.viewport().update()

    @property
    def rendered_gray(self) -> np.ndarray | None:
        """The full-resolution 8-bit display image (after window and inversion), or None
        while a drag preview is showing."""
        if self._base_display is None or self._base_is_preview:
            return None
        return self._base_display.gray

    def composed_image(self, heat_map: bool = True) -> QImage:
        """The image as shown (window, inversion, heat map at its opacity), at source size;
        ``heat_map=False`` leaves the map out (the report shows the film both ways).

        Renders the scene itself, so exports use the very composition on screen.
        """
        if self._xray is None:
            return QImage()
        rows, cols = self._xray.shape
        image = QImage(cols, rows, QImage.Format.Format_RGB32)
        image.fill(QColor(0, 0, 0))
        overlay_shown = self._overlay.isVisible()
        if not heat_map:
            self._overlay.setVisible(False)
        painter = QPainter(image)
        try:
            rect = QRectF(0, 0, cols, rows)
            self._scene.render(painter, rect, rect)
        finally:
            painter.end()
            self._overlay.setVisible(overlay_shown)
        if not self.state.orientation.is_identity:  # turned and mirrored as on screen
            image = image.transformed(orientation_transform(self.state.orientation))
        return image

    # -- zoom -----------------------------------------------------------------------------
    def fit(self) -> None:
        """Scale so the whole image fits the view, centred; keeps fitting on resize."""
        if self._xray is None:
            return
        rows, cols = self._xray.shape
        shown_rows, shown_cols = self.state.orientation.displayed_shape((rows, cols))
        area = self.viewport().rect()
        zoom = clamp_zoom(min(area.width() / shown_cols, area.height() / shown_rows))
        self.setTransform(orientation_transform(self.state.orientation, zoom))
        self.centerOn(cols / 2.0, rows / 2.0)
        self.state.update(zoom=zoom, fit=True)

    def actual_size(self) -> None:
        """One image pixel per physical screen pixel (also on high-DPI screens), keeping
        the view's centre: the scale at which a reader judges fine detail."""
        self.zoom_to(1.0 / max(self.devicePixelRatioF(), 1e-6))

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.zoom_to(self.state.zoom * factor, anchor)

    def zoom_to(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the scene point under ``anchor`` (view coordinates) in place."""
        if self._xray is None:
            return
        zoom = clamp_zoom(zoom)
        anchor_point = (anchor or QPointF(self.viewport().rect().center())).toPoint()
        scene_point = self.mapToScene(anchor_point)
        self.setTransform(orientation_transform(self.state.orientation, zoom))
        moved = self.mapFromScene(scene_point) - anchor_point
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        self.state.update(zoom=zoom, fit=False)

    # -- reading tools ----------------------------------------------------------------------
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

    def set_magnifier(self, on: bool) -> None:
        self.magnifier = bool(on)
        self.viewport().update()

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

    # -- events ---------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120.0
        if notches:
            self.zoom_by(WHEEL_ZOOM_PER_NOTCH**notches, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        measuring = self.tool != TOOL_PAN and self._xray is not None
        if event.button() == Qt.MouseButton.LeftButton and measuring:
            self._measure_press(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        if event.button() == Qt.MouseButton.RightButton and self._xray is not None:
            self._drag_origin = event.position().toPoint()
            self._drag_window = self.state.window
            self.viewport().setCursor(Qt.CursorShape.SizeAllCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._report_cursor(event.position())
        self._cursor = event.position()
        if self.magnifier:
            self.viewport().update()
        if self._draft is not None:
            self._measure_move(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        if self._drag_origin is not None and self._drag_window is not None:
            delta = event.position().toPoint() - self._drag_origin
            presets = self._presets
            assert presets is not None
            low, high = presets.value_range
            window = dragged_window(
                self._drag_window, delta.x(), delta.y(), high - low, presets.min_width
            )
            self.state.update(window=window, preset=None)
            event.accept()
            return
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.state.update(fit=False)  # panning: stop following the window size
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._draft is not None:
            self._measure_release(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        if event.button() == Qt.MouseButton.RightButton and self._drag_origin is not None:
            self._drag_origin = self._drag_window = None
            self.viewport().unsetCursor()
            self.render_image()  # full resolution again
            self.window_drag_finished.emit()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.tool == TOOL_PAN:
            self.fit()
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def leaveEvent(self, event) -> None:
        self.cursor_moved.emit(None)
        self._cursor = None
        if self.magnifier:
            self.viewport().update()
        super().leaveEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.state.fit:
            self.fit()

    @property
    def dragging_window(self) -> bool:
        return self._drag_origin is not None

    def _report_cursor(self, position: QPointF) -> None:
        if self._xray is None:
            return
        scene = self.mapToScene(position.toPoint())
        col, row = math.floor(scene.x()), math.floor(scene.y())
        rows, cols = self._xray.shape
        if 0 <= row < rows and 0 <= col < cols:
            self.cursor_moved.emit((col, row, float(self._xray.pixels[row, col])))
        else:
            self.cursor_moved.emit(None)

    # -- state ----------------------------------------------------------------------------
    def _on_state_changed(self, changed: frozenset[str]) -> None:
        if changed & {"window", "invert"}:
            self.render_image(preview=self.dragging_window)
        if changed & {"overlay_visible", "overlay_opacity"}:
            self._apply_overlay_state()
        if "orientation" in changed:
            self._apply_orientation()
        if changed & {"window", "invert", "zoom"}:
            self.viewport().update()

    def _apply_orientation(self) -> None:
        """Turn or mirror the view about its centre (image, heat map and rulers alike)."""
        if self._xray is None:
            return
        if self.state.fit:
            self.fit()
            return
        centre = self.mapToScene(self.viewport().rect().center())
        self.setTransform(orientation_transform(self.state.orientation, self.state.zoom))
        self.centerOn(centre)

    def _apply_overlay_state(self) -> None:
        self._overlay.setOpacity(self.state.overlay_opacity)
        self._overlay.setVisible(self.state.overlay_visible and self.has_heat_layer)

    def detach(self) -> None:
        """Stop listening to the shared state (before the widget goes away)."""
        self.state.unsubscribe(self._on_state_changed)

    # -- corner annotations, as on a reading-room viewer ---------------------------------------
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
