"""Side-by-side comparison: a second study beside the first, zoom, pan and window linked.

The second view has its own ViewState (its own image and window) and loads its file off
the GUI thread through an image-only AnalysisPipeline. ``ViewLink`` carries a change in
one view to the other: zoom so the two images are shown at the same width on screen,
pan to the same relative position, and the window as the same fraction of each image's
value range (two studies rarely share a pixel scale).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QPointF, Signal, Slot

from xraydesk.gui.analysis import AnalysisPipeline, Failure, LoadedImage
from xraydesk.gui.image_view import ImageView
from xraydesk.printable import printable
from xraydesk.viewer.measure import relative_window, window_from_relative
from xraydesk.viewer.viewstate import ViewState

# the second pane before its study has loaded: how to choose one (File > Open would
# replace the first image instead)
COMPARE_EMPTY_TEXT = "The study to compare appears here\nTools › Compare with… (Ctrl+Shift+O)"


class ViewLink(QObject):
    """Keeps two ImageViews on the same zoom, pan and window while both show images."""

    def __init__(self, first: ImageView, second: ImageView, parent: QObject | None = None):
        super().__init__(parent)
        self.views = (first, second)
        self._busy = False
        self._listeners = []
        for src, dst in ((first, second), (second, first)):
            listener = self._make_listener(src, dst)
            src.state.subscribe(listener)
            self._listeners.append((src, listener))
            for bar in (src.horizontalScrollBar(), src.verticalScrollBar()):
                bar.valueChanged.connect(lambda _v, s=src, d=dst: self._guarded(self._pan, s, d))

    def _make_listener(self, src: ImageView, dst: ImageView):
        def listener(changed: frozenset[str]) -> None:
            if changed & {"zoom"}:
                self._guarded(self._zoom, src, dst)
            if changed & {"window"}:
                self._guarded(self._window, src, dst)

        return listener

    def detach(self) -> None:
        for view, listener in self._listeners:
            view.state.unsubscribe(listener)
        self._listeners.clear()

    def sync(self) -> None:
        """Bring the second view to the first's zoom, pan and window (after it loads)."""
        first, second = self.views
        self._guarded(self._zoom, first, second)
        self._guarded(self._window, first, second)

    def _guarded(self, apply, src: ImageView, dst: ImageView) -> None:
        if self._busy or src.xray is None or dst.xray is None:
            return
        self._busy = True
        try:
            apply(src, dst)
        finally:
            self._busy = False

    @staticmethod
    def _zoom(src: ImageView, dst: ImageView) -> None:
        assert src.xray is not None and dst.xray is not None
        ratio = src.xray.shape[1] / dst.xray.shape[1]  # same width on screen
        dst.zoom_to(src.state.zoom * ratio)
        ViewLink._pan(src, dst)

    @staticmethod
    def _pan(src: ImageView, dst: ImageView) -> None:
        assert src.xray is not None and dst.xray is not None
        centre = src.mapToScene(src.viewport().rect().center())
        rows, cols = src.xray.shape
        d_rows, d_cols = dst.xray.shape
        dst.centerOn(QPointF(centre.x() / cols * d_cols, centre.y() / rows * d_rows))

    @staticmethod
    def _window(src: ImageView, dst: ImageView) -> None:
        if src.state.window is None or src.presets is None or dst.presets is None:
            return
        relative = relative_window(src.state.window, src.presets.value_range)
        window = window_from_relative(relative, dst.presets.value_range)
        dst.state.update(window=window, preset=src.state.preset)


class CompareLoader(QObject):
    """Loads the comparison study into its view, off the GUI thread."""

    loaded = Signal(object)  # Path
    failed = Signal(str)

    def __init__(self, view: ImageView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        view.empty_text = COMPARE_EMPTY_TEXT
        self.pipeline = AnalysisPipeline(parent=self)
        self.pipeline.image_loaded.connect(self._on_loaded)
        self.pipeline.failed.connect(self._on_failed)

    def open(self, path: Path) -> None:
        self.view.busy_text = f"Loading {printable(path.name)}…"
        self.view.viewport().update()
        self.pipeline.open(Path(path), None)

    @Slot(object)
    def _on_loaded(self, loaded: LoadedImage) -> None:
        self.view.busy_text = ""
        self.view.set_image(loaded.xray, loaded.presets, loaded.display)
        self.loaded.emit(loaded.xray.path)

    @Slot(object)
    def _on_failed(self, failure: Failure) -> None:
        self.view.busy_text = ""
        self.view.viewport().update()
        self.failed.emit(f"Cannot compare: {printable(failure.message)}")

    def shutdown(self) -> None:
        self.pipeline.cancel()
        self.pipeline.wait(30_000)


def compare_state(main: ViewState) -> ViewState:
    """The second view's state: no heat map (it is not classified)."""
    return ViewState(overlay_visible=False, overlay_opacity=main.overlay_opacity)
