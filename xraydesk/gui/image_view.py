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
    QImage,
    QMouseEvent,
    QPainter,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from xraydesk.gui.measurements import (  # noqa: F401 (the tool names are imported from here)
    TOOL_ANGLE,
    TOOL_CTR,
    TOOL_PAN,
    TOOL_RULER,
    Measurement,
    MeasuringTools,
)
from xraydesk.gui.qt_images import DisplayImage, render_display
from xraydesk.gui.view_annotations import LOUPE_SIZE, ViewAnnotations  # noqa: F401
from xraydesk.gui.view_orientation import orientation_transform
from xraydesk.imaging.xray import XRay
from xraydesk.viewer.orientation import Orientation
from xraydesk.viewer.viewstate import ViewState, clamp_zoom
from xraydesk.viewer.windowing import PRESET_FILE, WindowPresets, dragged_window

# Images above PREVIEW_ABOVE pixels are windowed from a subsampled copy of at most
# PREVIEW_PIXELS while the right button is held: about 10 ms a frame on a laptop CPU.
# A 1024 x 1024 CR renders in full that fast, so only large DX detectors get previews.
PREVIEW_ABOVE = 4_200_000
PREVIEW_PIXELS = 1_500_000
WHEEL_ZOOM_PER_NOTCH = 1.2
EMPTY_TEXT = "Open a chest radiograph\nFile › Open (Ctrl+O), or drop a file here"


class ImageView(MeasuringTools, ViewAnnotations, QGraphicsView):
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
    def set_magnifier(self, on: bool) -> None:
        self.magnifier = bool(on)
        self.viewport().update()

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
