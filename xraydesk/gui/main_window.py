"""The XRayDesk main window: open a radiograph, read it, see what the model thinks.

Public surface for the panels other parts of the app add (batch, fine-tuning):
``open_path``, ``add_tool_panel``, ``set_active_model``, ``refresh_models``,
``active_model_path``, ``device``, the ``model_changed`` signal and ``active_model_changed``
(card path, device), which every tool panel that classifies follows (``tool_panel``).

The model handling, the view controls and the exports live in mixins of their own
(``window_models``, ``window_viewing``, ``window_exports``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from xraydesk.classifier import Prediction
from xraydesk.classifier.cache import ClassifierCache
from xraydesk.files import path_problem
from xraydesk.gui.analysis import (
    AnalysisPipeline,
    Explanation,
)
from xraydesk.gui.banner import ERROR, MessageBanner
from xraydesk.gui.compare import CompareLoader, ViewLink, compare_state
from xraydesk.gui.dialogs import AboutDialog, ShortcutsDialog, first_start_notice
from xraydesk.gui.folder_images import FolderImages
from xraydesk.gui.image_view import ImageView
from xraydesk.gui.metadata_panel import MetadataPanel
from xraydesk.gui.model_choice import ModelChoice, ModelLoader
from xraydesk.gui.report_export import (
    install_report_options,
)
from xraydesk.gui.results_panel import ResultsPanel
from xraydesk.gui.settings import AppSettings
from xraydesk.gui.tool_panel import FollowsModel, OpensImages, StopsWork
from xraydesk.gui.viewer_analysis import AnalysisWidgets, ViewerAnalysis, cannot_open
from xraydesk.gui.window_chrome import (
    build_chrome,
    build_side_dock,
    icon,
    tool_dock,
)
from xraydesk.gui.window_exports import ExportActions
from xraydesk.gui.window_models import ModelActions
from xraydesk.gui.window_viewing import ViewControls
from xraydesk.imaging.discover import iter_images
from xraydesk.imaging.xray import XRay
from xraydesk.logs import log_hint
from xraydesk.model import library
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.printable import printable
from xraydesk.viewer.viewstate import ViewState

log = logging.getLogger(__name__)

OPEN_FILTERS = ";;".join(
    (
        "Radiographs (*.png *.jpg *.jpeg *.tif *.tiff *.dcm *.dicom *.bmp)",
        "PNG (*.png)",
        "JPEG (*.jpg *.jpeg)",
        "TIFF (*.tif *.tiff)",
        "DICOM (*.dcm *.dicom)",
        "All files (*)",  # DICOM files often have no extension: content decides
    )
)
DEFAULT_SIZE = QSize(1440, 900)
TOOL_PANEL_SHARE = 0.3  # of the window's width, when a tool panel is opened


class MainWindow(ModelActions, ViewControls, ExportActions, QMainWindow):
    image_shown = Signal(object)  # Path
    probabilities_shown = Signal(object)  # Prediction
    overlay_shown = Signal(object)  # CamResult
    analysis_finished = Signal()  # the newest request has nothing more to deliver
    error_shown = Signal(str)
    model_changed = Signal(object)  # card Path, or None when no model is available
    # what tool panels classify with: (card Path or None, device), on a model or device change
    active_model_changed = Signal(object, str)

    def __init__(
        self,
        model: str | Path | None = None,
        device: str | None = None,
        settings: AppSettings | None = None,
        parent: QWidget | None = None,
        cache: ClassifierCache | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("XRayDesk")
        self.setWindowIcon(icon("app"))
        self.settings = settings or AppSettings()
        self.state = ViewState(
            overlay_visible=self.settings.overlay_visible,
            overlay_opacity=self.settings.overlay_opacity,
        )
        self._device = device or self.settings.device
        if self._device not in DEVICE_CHOICES:
            self._device = "auto"
        self.models = ModelChoice(self.settings)
        self.folder_images = FolderImages()
        self._tool_docks: list[QDockWidget] = []
        self._closed = False
        self.analysis = ViewerAnalysis(
            self.settings, lambda: (self.models.path, self._device), cache, parent=self
        )
        # the model loads on a worker thread: the window is shown and usable before it is
        # ready, and an image opened meanwhile waits for it
        self.model_loader = ModelLoader(self.analysis.pipeline.cache, self)
        self.model_loader.loading.connect(self._on_model_loading)
        self.model_loader.ready.connect(self._on_model_ready)
        self.model_loader.failed.connect(self._on_model_failed)

        self._build_central()
        self._build_side_panel()
        self.actions_by_id: dict[str, QAction] = {}
        self.chrome = chrome = build_chrome(self, self.side_dock)
        # the parts the tools, the panels and the tests reach, under the window's names
        self.model_menu, self.panels_menu = chrome.model_menu, chrome.panels_menu
        self.device_group, self.toolbar = chrome.device_group, chrome.toolbar
        self.preset_combo, self.cursor_label = chrome.preset_combo, chrome.cursor_label
        self.window_label, self.zoom_label = chrome.window_label, chrome.zoom_label
        self.timing_label = chrome.timing_label
        self._bind_analysis()
        install_report_options(self)
        self.model_state_label = QLabel()  # "Loading model …" until it is ready
        self.model_state_label.setObjectName("statusValue")
        self.statusBar().insertPermanentWidget(0, self.model_state_label)
        self.state.subscribe(self._on_state_changed)
        self.setAcceptDrops(True)

        self.refresh_models()
        if model is not None:
            self.set_active_model(model)
        elif self.models.path is not None:
            self._load_model(self.models.path)
        self._restore_geometry()
        self.sync_actions()

    # ================================================================ construction
    def _build_central(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = MessageBanner()
        layout.addWidget(self.banner)
        self.view = ImageView(self.state)
        self.view.cursor_moved.connect(self._on_cursor)
        # the comparison study, beside the image, created hidden (Tools > Compare with…)
        self.compare_view = ImageView(compare_state(self.state))
        self.compare_view.hide()
        self.compare_loader = CompareLoader(self.compare_view, self)
        self.compare_loader.loaded.connect(self._on_compare_loaded)
        self.compare_loader.failed.connect(self.show_message)
        self.view_link = ViewLink(self.view, self.compare_view, self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.compare_view)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

    def _build_side_panel(self) -> None:
        self.results = ResultsPanel()
        self.results.model_selected.connect(self._on_model_selected)
        self.results.opacity_changed.connect(self.set_overlay_opacity)
        self.results.cam_class_selected.connect(self.explain_class)
        self.results.cam_method_selected.connect(self.analysis.set_method)
        self.results.set_cam_method(self.analysis.method)
        self.results.set_opacity(self.state.overlay_opacity)
        self.results.set_overlay_checked(self.state.overlay_visible)
        self.metadata = MetadataPanel()
        tabs = ((self.results, "Results"), (self.metadata, "Image info"))
        self.side_dock = build_side_dock(self, tabs)
        self.side_tabs = self.side_dock.widget()

    def _bind_analysis(self) -> None:
        """The analysis shows its results on this window's widgets and tells the window
        the rest: its signals become the window's, its messages go to the banner."""
        a = self.analysis
        a.bind(AnalysisWidgets(self.view, self.results, self.metadata, self.timing_label))
        # the panel's check box and its "Show heat map" offer are the H action itself
        heat = self.actions_by_id["toggle_overlay"]
        self.results.overlay_toggled.connect(lambda _on: heat.trigger())
        self.results.heat_map_requested.connect(heat.trigger)
        a.image_shown.connect(self.image_shown)
        a.probabilities_shown.connect(self.probabilities_shown)
        a.overlay_shown.connect(self.overlay_shown)
        a.analysis_finished.connect(self.analysis_finished)
        a.message.connect(self.show_message)
        a.status.connect(self._show_status)
        a.title_changed.connect(self.setWindowTitle)
        a.actions_changed.connect(self.sync_actions)

    def _show_status(self, text: str, timeout_ms: int) -> None:
        if text:
            self.statusBar().showMessage(text, timeout_ms)
        else:
            self.statusBar().clearMessage()

    def _restore_geometry(self) -> None:
        geometry = self.settings.geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(DEFAULT_SIZE)
        state = self.settings.window_state
        if state is not None:
            self.restoreState(state)

    # ================================================================ opening
    def open_file_dialog(self) -> None:
        """File > Open: ask for a file, then open it like every other way in."""
        path = self._ask_open_path()
        if path:
            self.open_path(path)

    def _ask_open_path(self) -> str:
        start = self.settings.last_folder or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open radiograph", start, OPEN_FILTERS)
        return path

    @Slot(object)
    def open_path(self, path: str | os.PathLike[str]) -> bool:
        """Open a file, or the first image of a folder. False (with a message) if there is none.

        The image appears as soon as it is decoded; probabilities and the heat map follow
        from worker threads. Everything goes through here: menu, drop, command line,
        recent files, folder navigation and other panels.
        """
        path = Path(path).expanduser().absolute()  # folder neighbours are absolute paths
        problem = path_problem(path)  # is_dir raised OSError on a name too long
        if problem is not None:
            # the image on screen stays, as after any failed open
            self.show_message(cannot_open(f"{path}: {problem}", self.analysis.xray))
            return False
        if path.is_dir():
            first = next(iter_images([path]), None)
            if first is None:
                self.show_message(
                    f"{printable(path)}: this folder holds no image XRayDesk can open "
                    "(PNG, JPEG, TIFF, BMP or DICOM)."
                )
                return False
            path = first
        self.banner.dismiss()
        self.analysis.open(path)
        self.settings.last_folder = str(path.parent)
        return True

    def next_image(self) -> None:
        self._step_in_folder(+1)

    def previous_image(self) -> None:
        self._step_in_folder(-1)

    def _step_in_folder(self, step: int) -> None:
        current = self.analysis.current_path
        if current is None:
            self.statusBar().showMessage("Open an image first.", 4000)
            return
        target = self.folder_images.neighbour(current, step)
        if target is None:
            edge = "first" if step < 0 else "last"
            self.statusBar().showMessage(
                f"This is the {edge} image in {printable(current.parent)}.", 4000
            )
            return
        self.open_path(target)

    # drag and drop ----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        dropped = _local_paths(event.mimeData())
        if not dropped:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_path(dropped[0])
        if len(dropped) > 1:
            self.statusBar().showMessage(
                f"Opened the first of {len(dropped)} dropped items; use batch mode for many.",
                6000,
            )

    # ================================================================ messages
    def show_message(self, text: str, kind: str = ERROR) -> None:
        """A non-modal message above the image (errors name the file and the cause)."""
        self.banner.show_message(text, kind)
        if kind == ERROR:
            self.error_shown.emit(text)

    def show_unexpected_error(self, exc: BaseException) -> None:
        """For the application's excepthook: say what happened, keep the window alive."""
        self.show_message(
            f"Unexpected error ({type(exc).__name__}: {exc}). XRayDesk is still running; "
            f"if this repeats, please report it with {log_hint()}."
        )

    def show_first_start_notice(self) -> None:
        """The assists-not-diagnoses notice, once per installation."""
        if self.settings.notice_acknowledged:
            return
        box = first_start_notice(self)
        box.finished.connect(lambda _=0: self._acknowledge_notice(box))
        box.open()
        self._notice_box = box

    def _acknowledge_notice(self, box) -> None:
        self.settings.notice_acknowledged = True
        self.settings.sync()
        box.deleteLater()

    # ================================================================ help
    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_about(self) -> AboutDialog:
        cards = library.list_models()
        cards += [c for c in self.models.outside if c not in cards]
        dialog = AboutDialog(cards, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # ================================================================ tool panels
    def add_tool_panel(self, widget: QWidget, title: str) -> QDockWidget:
        """Dock another tool (batch, PACS, fine-tuning) on the left, tabbed with the others.

        Tool panels start closed, so the image gets the window: View >
        Panels and the toolbar's panel buttons open them; once the user has arranged them,
        the saved window state puts them back where they were. The panel is wired by what it
        offers (``tool_panel``): ``open_image_requested`` opens the image here, ``set_model``
        follows ``active_model_changed`` from now on, ``shutdown`` runs when the window closes.
        """
        dock = tool_dock(self, widget, title)
        # restoreDockWidget before addDockWidget: afterwards it always "restores" (the dock
        # is in the layout), and a first launch opened every panel over the image (#29)
        restored = self.restoreDockWidget(dock)
        if not restored:
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
            if self._tool_docks:
                self.tabifyDockWidget(self._tool_docks[-1], dock)
            dock.hide()
        dock.setProperty("sized", restored)  # a restored panel keeps the user's width
        self._tool_docks.append(dock)
        toggle = dock.toggleViewAction()
        toggle.setToolTip(f"Show or hide the {title} panel")
        self.panels_menu.addAction(toggle)
        self.toolbar.addAction(toggle)
        if isinstance(widget, OpensImages):
            widget.open_image_requested.connect(self.open_path)
        if isinstance(widget, FollowsModel):
            widget.set_model(self.models.path, self._device)
            self.active_model_changed.connect(widget.set_model)
        dock.visibilityChanged.connect(lambda shown, d=dock: shown and self._size_tool_dock(d))
        return dock

    def show_tool_panel(self, dock: QDockWidget) -> None:
        """Open a tool panel and bring its tab to the front."""
        dock.show()
        dock.raise_()

    def _size_tool_dock(self, dock: QDockWidget) -> None:
        """A panel opened for the first time gets room for its table, the image keeps at
        least half; later the user's own width (saved in the window state) stands."""
        if dock.property("sized") or dock.isFloating():
            return
        dock.setProperty("sized", True)
        if dock.width() >= TOOL_PANEL_SHARE * self.width() - 1:
            return
        width = int(TOOL_PANEL_SHARE * self.width())
        self.resizeDocks([dock], [width], Qt.Orientation.Horizontal)

    # ================================================================ lifetime
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closed:
            self.settings.geometry = self.saveGeometry()
            self.settings.window_state = self.saveState()
            self.settings.sync()
            self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Drop pending work and wait for the workers (they hold references to this window)."""
        self._closed = True
        for dock in self._tool_docks:  # tool panels with workers of their own stop them too
            panel = dock.widget()
            if isinstance(panel, StopsWork):
                panel.shutdown()
        self.analysis.pipeline.cancel()
        self.analysis.pipeline.wait(timeout_ms)
        self.model_loader.wait(timeout_ms)
        self.compare_loader.shutdown()
        self.view_link.detach()
        self.state.unsubscribe(self._on_state_changed)
        self.view.detach()
        self.compare_view.detach()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.WindowStateChange:
            self.actions_by_id["full_screen"].setChecked(self.isFullScreen())
        super().changeEvent(event)

    @property
    def pipeline(self) -> AnalysisPipeline:
        return self.analysis.pipeline

    @property
    def timings(self) -> dict[str, float]:
        """Seconds from open to the image, the probabilities and the heat map."""
        return self.analysis.timings

    @property
    def current_xray(self) -> XRay | None:
        return self.analysis.xray

    @property
    def current_prediction(self) -> Prediction | None:
        return self.analysis.prediction

    @property
    def current_explanation(self) -> Explanation | None:
        return self.analysis.explanation


def _local_paths(mime) -> list[Path]:
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
