"""The XRayDesk main window: open a radiograph, read it, see what the model thinks.

Public surface for the panels other parts of the app add (batch, fine-tuning):
``open_path``, ``add_tool_panel``, ``set_active_model``, ``refresh_models``,
``active_model_path``, ``device``, the ``model_changed`` signal and ``active_model_changed``
(card path, device), which every tool panel that classifies follows (``tool_panel``).
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

from xraydesk import paths
from xraydesk.classifier import Prediction
from xraydesk.classifier.cache import ClassifierCache
from xraydesk.errors import ModelError, XRayDeskError
from xraydesk.gui.analysis import (
    AnalysisPipeline,
    Explanation,
)
from xraydesk.gui.banner import ERROR, INFO, WARNING, MessageBanner
from xraydesk.gui.compare import CompareLoader, ViewLink, compare_state
from xraydesk.gui.dialogs import AboutDialog, ShortcutsDialog, first_start_notice
from xraydesk.gui.folder_images import FolderImages
from xraydesk.gui.image_view import TOOL_ANGLE, TOOL_CTR, TOOL_RULER, ImageView
from xraydesk.gui.metadata_panel import MetadataPanel
from xraydesk.gui.model_choice import ModelChoice, ModelLoader, population_check
from xraydesk.gui.report import ReportContent, write_report
from xraydesk.gui.report_export import (
    build_report_content,
    default_report_path,
    install_report_options,
    legend_image,
)
from xraydesk.gui.results_panel import ResultsPanel
from xraydesk.gui.settings import AppSettings
from xraydesk.gui.tool_panel import FollowsModel, OpensImages, StopsWork
from xraydesk.gui.viewer_analysis import AnalysisWidgets, ViewerAnalysis
from xraydesk.gui.window_chrome import (
    IMAGE_ACTIONS,
    build_chrome,
    build_side_dock,
    cursor_text,
    icon,
    show_preset,
    tool_dock,
)
from xraydesk.imaging.discover import iter_images
from xraydesk.imaging.xray import Window, XRay
from xraydesk.logs import log_hint
from xraydesk.model import library
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.viewer.viewstate import ViewState
from xraydesk.viewer.windowing import (
    PRESET_FILE,
    format_window,
)

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


def no_model_message() -> str:
    return (
        "No model is installed. XRayDesk shows images, but needs a model for probabilities "
        f"and heat maps. Add a model card (.json) and its weights to {paths.user_models_dir()}, "
        "train one with `xraydesk train`, or start with `xraydesk --model CARD.json`."
    )


class MainWindow(QMainWindow):
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
        # ready, and an image opened meanwhile waits for it (issue 13)
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
        self.results.overlay_toggled.connect(self.set_overlay_visible)
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
        if path.is_dir():
            first = next(iter_images([path]), None)
            if first is None:
                self.show_message(
                    f"{path}: this folder holds no image XRayDesk can open "
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
            self.statusBar().showMessage(f"This is the {edge} image in {current.parent}.", 4000)
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

    # ================================================================ models
    @property
    def active_model_path(self) -> Path | None:
        return self.models.path

    @property
    def device(self) -> str:
        return self._device

    def refresh_models(self) -> None:
        """Re-read the model library (after training, import, rename or delete)."""
        cards = self.models.cards()
        current = self.models.current_among(cards)
        self.results.set_models(cards, current)
        new_path = Path(current) if current else None
        self.results.show_no_model(None if cards else no_model_message())
        if new_path != self.models.path:
            self.models.path = new_path
            self._announce_model()
            if self.analysis.xray is not None:
                self.analysis.rerun()
        self.sync_actions()

    def set_active_model(self, name_or_card_path: str | Path) -> bool:
        """Use this model (a library name or a card path); re-runs the current image.

        Every way of choosing a model ends here: the command line, Model > Use a model
        file, the wizard, the model manager and the results panel's selector.
        """
        try:
            card_path = self.models.resolve(name_or_card_path)
        except ModelError as exc:
            self.show_message(str(exc))
            self.refresh_models()  # the selector goes back to the model in use
            return False
        self.models.select(card_path)
        self.refresh_models()
        self._announce_model()
        self._load_model(card_path)
        self.analysis.rerun()
        self._warn_population(card_path)
        return True

    def _warn_population(self, card_path: Path) -> None:
        """Switching to a model whose population leaves out the patient on screen is said
        at once, not only in the results (a pediatric model on an adult film)."""
        warnings = population_check(card_path, self.analysis.xray)
        if warnings:
            self.show_message(f"Now using {card_path.stem}. {warnings[0].message}", WARNING)

    @Slot(str)
    def _on_model_selected(self, card_path: str) -> None:
        """The results panel's selector: a different model is used as any other way."""
        if Path(card_path) != self.models.path:
            self.set_active_model(card_path)

    def _announce_model(self) -> None:
        """Tell the app and every tool panel which model (and device) is active now."""
        self.model_changed.emit(self.models.path)
        self.active_model_changed.emit(self.models.path, self._device)

    def _load_model(self, card_path: Path | None) -> None:
        """Load this model on a worker thread (nothing to do when it is already loaded)."""
        if card_path is not None:
            self.model_loader.load(card_path, self._device)

    @Slot(object)
    def _on_model_loading(self, card_path: Path) -> None:
        self.model_state_label.setText(f"Loading model {card_path.stem}…")
        self.statusBar().showMessage(
            f"Loading model {card_path.stem}… Images can be opened now; they are classified "
            "as soon as it is ready."
        )

    @Slot(object)
    def _on_model_ready(self, card_path: Path) -> None:
        if self.model_loader.is_loading():
            return  # another model (or device) is on its way: keep saying so
        self.model_state_label.setText(f"Model {card_path.stem} ready")
        self.statusBar().showMessage(f"Model {card_path.stem} ready.", 5000)

    @Slot(object, str)
    def _on_model_failed(self, card_path: Path, message: str) -> None:
        self.model_state_label.setText(f"Model {card_path.stem} not loaded")
        if card_path == self.models.path and self.analysis.xray is None:
            self.show_message(message)  # with an image on screen its analysis says it

    def choose_model_file(self) -> None:
        """Model > Use a model file: ask for a card anywhere on disk."""
        start = str(paths.user_models_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Use a model", start, "Model cards (*.json)")
        if path:
            self.set_active_model(path)

    def set_device(self, device: str) -> None:
        if device == self._device:
            return
        self._device = device
        self.settings.device = device
        for action in self.device_group.actions():
            action.setChecked(action.data() == device)
        self.active_model_changed.emit(self.models.path, device)  # tool panels follow it too
        self._load_model(self.models.path)
        self.analysis.rerun()

    # ================================================================ view controls
    @Slot(str)
    def explain_class(self, class_id: str) -> None:
        """Show the heat map for another class (default: the predicted one)."""
        self.analysis.explain_class(class_id)

    def set_window(self, window: Window) -> None:
        self.state.update(window=window, preset=None)

    def set_window_preset(self, name: str) -> None:
        presets = self.view.presets
        if presets is None or name not in presets.windows:
            return
        self.state.update(window=presets[name], preset=name)

    def reset_window(self) -> None:
        self.set_window_preset(PRESET_FILE)

    def set_invert(self, invert: bool) -> None:
        self.state.update(invert=bool(invert))

    @Slot(bool)
    def set_overlay_visible(self, visible: bool) -> None:
        self.state.update(overlay_visible=bool(visible))

    @Slot(float)
    def set_overlay_opacity(self, opacity: float) -> None:
        self.state.update(overlay_opacity=opacity)

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def _on_state_changed(self, changed: frozenset[str]) -> None:
        state = self.state
        if "overlay_visible" in changed:
            self.actions_by_id["toggle_overlay"].setChecked(state.overlay_visible)
            self.results.set_overlay_checked(state.overlay_visible)
            self.settings.overlay_visible = state.overlay_visible
        if "overlay_opacity" in changed:
            self.results.set_opacity(state.overlay_opacity)
            self.settings.overlay_opacity = state.overlay_opacity
        if "invert" in changed:
            self.actions_by_id["invert"].setChecked(state.invert)
        if changed & {"window", "preset"}:
            window = state.window
            self.window_label.setText(format_window(window) if window is not None else "")
            show_preset(self.preset_combo, state.preset)
        if "zoom" in changed:
            self.zoom_label.setText(f"Zoom {state.zoom * 100:.0f}%")

    def _on_cursor(self, info: tuple[int, int, float] | None) -> None:
        self.cursor_label.setText(cursor_text(info))

    def sync_actions(self) -> None:
        has_image = self.analysis.xray is not None
        for name in IMAGE_ACTIONS:
            self.actions_by_id[name].setEnabled(has_image)
        self.preset_combo.setEnabled(has_image)
        self.actions_by_id["export_report"].setEnabled(self.analysis.prediction is not None)

    # ================================================================ reading tools
    def set_tool(self, tool: str) -> None:
        """Pan, distance ruler or angle, in both views."""
        for view in (self.view, self.compare_view):
            view.set_tool(tool)
        self.actions_by_id["tool_ruler"].setChecked(tool == TOOL_RULER)
        self.actions_by_id["tool_angle"].setChecked(tool == TOOL_ANGLE)
        self.actions_by_id["tool_ctr"].setChecked(tool == TOOL_CTR)

    def set_magnifier(self, on: bool) -> None:
        for view in (self.view, self.compare_view):
            view.set_magnifier(on)
        self.actions_by_id["magnifier"].setChecked(on)

    def compare_with(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Show another study beside this one, zoom, pan and window linked."""
        if self.analysis.xray is None:
            self.show_message("Open an image first, then the study to compare it with.", INFO)
            return False
        if path is None or isinstance(path, bool):  # a QAction's ``checked`` is no path
            path = self._ask_open_path()
            if not path:
                return False
        self.compare_view.show()
        self.splitter.setSizes([1, 1])
        self.compare_loader.open(Path(path).expanduser().absolute())
        return True

    def close_compare(self) -> None:
        self.compare_view.clear()
        self.compare_view.title_text = ""
        self.compare_view.hide()

    def _on_compare_loaded(self, path: Path) -> None:
        self.compare_view.title_text = f"Compared: {path.name}"
        self.view.fit()
        self.compare_view.fit()
        self.view_link.sync()

    # ================================================================ exports
    def _ask_save_path(self, title: str, suffix: str, file_filter: str) -> str:
        """A save dialog in the last folder, the name made from the current image's."""
        stem = self.analysis.xray.path.stem if self.analysis.xray is not None else "xraydesk"
        default = Path(self.settings.last_folder or Path.home()) / f"{stem}-{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, title, str(default), file_filter)
        return path

    def export_image(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Save the image as shown (window, inversion, heat map) as a PNG."""
        if self.analysis.xray is None:
            self.show_message("Nothing to export: open an image first.", INFO)
            return None
        path = path or self._ask_save_path("Export image", "view.png", "PNG (*.png)")
        if not path:
            return None
        out = Path(path)
        if not legend_image(self).save(str(out), "PNG"):  # labelled: class, model, notice
            self.show_message(f"{out}: cannot write the image (check the folder and free space).")
            return None
        self.statusBar().showMessage(f"Image saved to {out}", 6000)
        return out

    def export_report(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Write the one-page PDF report for the current image and prediction."""
        xray, prediction = self.analysis.xray, self.analysis.prediction
        if xray is None or prediction is None:
            self.show_message(
                "Nothing to report yet: open an image and wait for the probabilities.", INFO
            )
            return None
        if not path:  # the reports folder, not beside the image
            path, _ = QFileDialog.getSaveFileName(
                self, "Export report", str(default_report_path(self)), "PDF (*.pdf)"
            )
            if not path:
                return None
            self.settings.report_folder = str(Path(path).parent)
        content = self.report_content()
        assert content is not None
        try:
            out = write_report(Path(path), content)
        except XRayDeskError as exc:
            self.show_message(str(exc))
            return None
        self.statusBar().showMessage(f"Report saved to {out}", 6000)
        return out

    def report_content(self) -> ReportContent | None:
        """What the report of the image on screen says (None before the probabilities)."""
        return build_report_content(self)

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

        Tool panels start closed, so the image gets the window (issue 19 #5): View >
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
