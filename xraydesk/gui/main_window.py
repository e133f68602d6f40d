"""The XRayDesk main window: open a radiograph, read it, see what the model thinks.

Public surface for the panels other parts of the app add (batch, fine-tuning):
``open_path``, ``add_tool_panel``, ``set_active_model``, ``refresh_models``,
``active_model_path``, ``device`` and the ``model_changed`` signal.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
from PySide6.QtCore import QEvent, QSize, Qt, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from xraydesk import paths
from xraydesk.errors import ModelError, XRayDeskError
from xraydesk.gui.banner import ERROR, INFO, WARNING, MessageBanner
from xraydesk.gui.dialogs import AboutDialog, ShortcutsDialog, first_start_notice
from xraydesk.gui.image_view import ImageView
from xraydesk.gui.metadata_panel import MetadataPanel
from xraydesk.gui.report import ReportContent, write_report
from xraydesk.gui.results_panel import ResultsPanel
from xraydesk.gui.settings import AppSettings
from xraydesk.gui.shortcuts import SHORTCUTS
from xraydesk.gui.workers import (
    STAGE_CAM,
    STAGE_IMAGE,
    AnalysisPipeline,
    Explanation,
    Failure,
    LoadedImage,
)
from xraydesk.imaging.discover import iter_images
from xraydesk.imaging.xray import Window, XRay
from xraydesk.model import library
from xraydesk.model.cache import ClassifierCache
from xraydesk.model.card import ModelCard
from xraydesk.model.classifier import Prediction
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.viewer.viewstate import ViewState
from xraydesk.viewer.windowing import (
    PRESET_FILE,
    PRESET_FULL,
    PRESET_LUNG,
    PRESET_MEDIASTINUM,
    PRESET_NAMES,
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
OPACITY_STEP = 0.1
SIDE_PANEL_WIDTH = 360


def icon(name: str) -> QIcon:
    path = paths.resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


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
        self._model_path: Path | None = None
        self._extra_models: list[ModelCard] = []  # models opened by path, outside the library
        self._xray: XRay | None = None
        self._current_path: Path | None = None  # the file opened last (even if it failed)
        self._prediction: Prediction | None = None
        self._explanation: Explanation | None = None
        self._folder_listing: tuple[Path, int, list[Path]] | None = None
        self._open_started = 0.0
        self.timings: dict[str, float] = {}  # seconds from open: image, probabilities, overlay
        self._tool_docks: list[QDockWidget] = []
        self._closed = False

        self.pipeline = AnalysisPipeline(cache, parent=self)
        self.pipeline.image_loaded.connect(self._on_image_loaded)
        self.pipeline.prediction_ready.connect(self._on_prediction)
        self.pipeline.explanation_ready.connect(self._on_explanation)
        self.pipeline.failed.connect(self._on_failed)
        self.pipeline.progress.connect(self._on_progress)
        self.pipeline.finished.connect(self._on_pipeline_finished)

        self._build_central()
        self._build_side_panel()
        self.actions_by_id: dict[str, QAction] = {}
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self.state.subscribe(self._on_state_changed)
        self.setAcceptDrops(True)

        self._remember_outside_model(self.settings.model)
        self.refresh_models()
        if model is not None:
            self.set_active_model(model)
        elif self._model_path is not None:
            self.pipeline.preload(self._model_path, self._device)
        self._restore_geometry()
        self._sync_actions()

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
        layout.addWidget(self.view, 1)
        self.setCentralWidget(central)

    def _build_side_panel(self) -> None:
        self.results = ResultsPanel()
        self.results.model_selected.connect(self._on_model_selected)
        self.results.overlay_toggled.connect(self.set_overlay_visible)
        self.results.opacity_changed.connect(self.set_overlay_opacity)
        self.results.cam_class_selected.connect(self.explain_class)
        self.results.set_opacity(self.state.overlay_opacity)
        self.results.set_overlay_checked(self.state.overlay_visible)
        self.metadata = MetadataPanel()
        self.side_tabs = QTabWidget()
        self.side_tabs.setObjectName("sideTabs")
        self.side_tabs.setDocumentMode(True)
        for widget, title in ((self.results, "Results"), (self.metadata, "Image info")):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            scroll.setWidget(widget)
            self.side_tabs.addTab(scroll, title)
        self.side_dock = QDockWidget("Analysis", self)
        self.side_dock.setObjectName("analysisDock")
        self.side_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.side_dock.setTitleBarWidget(QWidget())  # no title bar: the tabs say what it is
        self.side_dock.setWidget(self.side_tabs)
        self.side_dock.setMinimumWidth(SIDE_PANEL_WIDTH)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.side_dock)

    def _build_actions(self) -> None:
        handlers = {
            "open": self.open_file_dialog,
            "previous": self.previous_image,
            "next": self.next_image,
            "export_report": self.export_report,
            "export_image": self.export_image,
            "quit": self.close,
            "fit": self.view.fit,
            "actual_size": self.view.actual_size,
            "zoom_in": lambda: self.view.zoom_by(1.25),
            "zoom_out": lambda: self.view.zoom_by(0.8),
            "invert": lambda: self.set_invert(not self.state.invert),
            "full_screen": self._toggle_full_screen,
            "preset_file": lambda: self.set_window_preset(PRESET_FILE),
            "preset_full": lambda: self.set_window_preset(PRESET_FULL),
            "preset_lung": lambda: self.set_window_preset(PRESET_LUNG),
            "preset_mediastinum": lambda: self.set_window_preset(PRESET_MEDIASTINUM),
            "reset_window": self.reset_window,
            "toggle_overlay": lambda: self.set_overlay_visible(not self.state.overlay_visible),
            "opacity_up": lambda: self.set_overlay_opacity(
                self.state.overlay_opacity + OPACITY_STEP
            ),
            "opacity_down": lambda: self.set_overlay_opacity(
                self.state.overlay_opacity - OPACITY_STEP
            ),
            "dismiss": self.banner.dismiss,
            "shortcuts": self.show_shortcuts,
        }
        icons = {
            "open": "open",
            "previous": "previous",
            "next": "next",
            "export_report": "report",
            "export_image": "export-image",
            "fit": "fit",
            "actual_size": "actual-size",
            "invert": "invert",
            "reset_window": "window-reset",
            "toggle_overlay": "heatmap",
            "zoom_in": "zoom-in",
            "zoom_out": "zoom-out",
        }
        for shortcut in SHORTCUTS:
            action = QAction(shortcut.text, self)
            action.setShortcuts([QKeySequence(k) for k in shortcut.keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            if shortcut.action in icons:
                action.setIcon(icon(icons[shortcut.action]))
            keys = ", ".join(
                QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText)
                for k in shortcut.keys
            )
            action.setToolTip(f"{shortcut.text.replace('&', '')} ({keys})")
            action.triggered.connect(handlers[shortcut.action])
            self.addAction(action)  # shortcuts work even with the menu bar hidden
            self.actions_by_id[shortcut.action] = action
        for name in ("invert", "toggle_overlay", "full_screen"):
            self.actions_by_id[name].setCheckable(True)
        self.actions_by_id["toggle_overlay"].setChecked(self.state.overlay_visible)
        self.about_action = QAction("&About XRayDesk", self)
        self.about_action.triggered.connect(self.show_about)
        self.refresh_models_action = QAction("&Refresh model list", self)
        self.refresh_models_action.triggered.connect(self.refresh_models)
        self.open_model_action = QAction("Use a model &file…", self)
        self.open_model_action.triggered.connect(self._choose_model_file)

    def _build_menus(self) -> None:
        a = self.actions_by_id
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(a["open"])
        self.recent_menu = QMenu("Open &recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addMenu(self.recent_menu)
        self._fill_recent_menu()
        file_menu.addSeparator()
        file_menu.addAction(a["previous"])
        file_menu.addAction(a["next"])
        file_menu.addSeparator()
        file_menu.addAction(a["export_report"])
        file_menu.addAction(a["export_image"])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])

        view_menu = bar.addMenu("&View")
        for name in ("fit", "actual_size", "zoom_in", "zoom_out"):
            view_menu.addAction(a[name])
        view_menu.addSeparator()
        view_menu.addAction(a["invert"])
        view_menu.addAction(a["toggle_overlay"])
        view_menu.addAction(a["opacity_up"])
        view_menu.addAction(a["opacity_down"])
        view_menu.addSeparator()
        view_menu.addAction(a["full_screen"])
        self.panels_menu = view_menu.addMenu("&Panels")
        self.panels_menu.addAction(self.side_dock.toggleViewAction())
        self.side_dock.toggleViewAction().setText("Analysis panel")

        window_menu = bar.addMenu("&Window")
        for name in ("preset_file", "preset_full", "preset_lung", "preset_mediastinum"):
            window_menu.addAction(a[name])
        window_menu.addSeparator()
        window_menu.addAction(a["reset_window"])

        self.model_menu = model_menu = bar.addMenu("&Model")
        model_menu.addAction(self.open_model_action)
        model_menu.addAction(self.refresh_models_action)
        device_menu = model_menu.addMenu("&Device")
        self.device_group = QActionGroup(self)
        labels = {
            "auto": "Automatic (GPU if present)",
            "cpu": "CPU",
            "cuda": "CUDA GPU",
            "mps": "Apple GPU",
        }
        for choice in DEVICE_CHOICES:
            action = QAction(labels.get(choice, choice), self, checkable=True)
            action.setData(choice)
            action.setChecked(choice == self._device)
            action.setEnabled(device_available(choice))
            action.triggered.connect(lambda _=False, c=choice: self.set_device(c))
            self.device_group.addAction(action)
            device_menu.addAction(action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a["shortcuts"])
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        a = self.actions_by_id
        bar = QToolBar("Main", self)
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(20, 20))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for name in ("open", "previous", "next"):
            bar.addAction(a[name])
        bar.addSeparator()
        for name in ("fit", "actual_size", "zoom_in", "zoom_out"):
            bar.addAction(a[name])
        bar.addSeparator()
        bar.addAction(a["invert"])
        label = QLabel("  Window ")
        label.setObjectName("toolbarLabel")
        bar.addWidget(label)
        self.preset_combo = QComboBox()
        self.preset_combo.setObjectName("presetCombo")
        self.preset_combo.setToolTip("Window presets (F2–F5); right-drag on the image for custom")
        self.preset_combo.addItems(PRESET_NAMES)
        self.preset_combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.preset_combo.activated.connect(
            lambda i: self.set_window_preset(self.preset_combo.itemText(i))
        )
        bar.addWidget(self.preset_combo)
        bar.addAction(a["reset_window"])
        bar.addSeparator()
        bar.addAction(a["toggle_overlay"])
        bar.addSeparator()
        bar.addAction(a["export_report"])
        bar.addAction(a["export_image"])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.cursor_label = QLabel()
        self.cursor_label.setObjectName("statusValue")
        self.cursor_label.setMinimumWidth(230)
        self.window_label = QLabel()
        self.window_label.setObjectName("statusValue")
        self.zoom_label = QLabel()
        self.zoom_label.setObjectName("statusValue")
        self.timing_label = QLabel()
        self.timing_label.setObjectName("statusValue")
        for label in (self.cursor_label, self.window_label, self.zoom_label, self.timing_label):
            status.addPermanentWidget(label)
        status.showMessage("Ready. Open a chest radiograph with Ctrl+O or drop a file here.")

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
        self._current_path = path
        self._prediction = self._explanation = None
        self._open_started = time.perf_counter()
        self.timings = {}
        self.timing_label.clear()
        self.results.show_pending(f"Loading {path.name}…")
        self.pipeline.open(path, self._model_path, self._device)
        self.view.busy_text = "Loading…"
        self.view.viewport().update()
        self.settings.last_folder = str(path.parent)
        return True

    def next_image(self) -> None:
        self._step_in_folder(+1)

    def previous_image(self) -> None:
        self._step_in_folder(-1)

    def _step_in_folder(self, step: int) -> None:
        if self._current_path is None:
            self.statusBar().showMessage("Open an image first.", 4000)
            return
        images = self._folder_images(self._current_path.parent)
        current = self._current_path
        if current in images:
            index = images.index(current) + step
        else:  # the file has gone: continue from where it would sort
            index = sum(1 for p in images if p.name < current.name) + (step if step < 0 else 0)
        if not 0 <= index < len(images):
            edge = "first" if step < 0 else "last"
            self.statusBar().showMessage(f"This is the {edge} image in {current.parent}.", 4000)
            return
        self.open_path(images[index])

    def _folder_images(self, folder: Path) -> list[Path]:
        """Images in a folder, sorted by name; re-listed when the folder changes."""
        try:
            stamp = folder.stat().st_mtime_ns
        except OSError:
            return []
        cached = self._folder_listing
        if cached is None or cached[0] != folder or cached[1] != stamp:
            images = [p for p in iter_images([folder]) if p.is_file()]
            self._folder_listing = (folder, stamp, images)
        return self._folder_listing[2] if self._folder_listing else []

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files
        for i, entry in enumerate(recent):
            path = Path(entry)
            action = self.recent_menu.addAction(f"&{(i + 1) % 10}  {path.name}")
            action.setToolTip(str(path))
            action.setStatusTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if not recent:
            self.recent_menu.addAction("No recent files").setEnabled(False)
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear list")
        clear.setEnabled(bool(recent))
        clear.triggered.connect(self.settings.clear_recent_files)

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

    # ================================================================ pipeline results
    @Slot(object)
    def _on_image_loaded(self, loaded: LoadedImage) -> None:
        xray = loaded.xray
        self._xray = xray
        self.view.set_image(xray, loaded.presets, loaded.display)  # resets window and inversion
        self.metadata.show_xray(xray)
        self.setWindowTitle(f"{xray.path.name} — XRayDesk")
        self.settings.add_recent_file(xray.path)
        self.timings["image"] = time.perf_counter() - self._open_started
        if self._model_path is None:
            self.results.clear_results("No probabilities: no model is available.")
            self.view.busy_text = ""
            self.show_message(
                f"{xray.path.name}: no probabilities or heat map, because no model is "
                "installed (see the Results panel).",
                WARNING,
            )
        else:
            self.results.show_pending("Classifying…")
        for note in xray.notes:
            self.statusBar().showMessage(note, 8000)
        self._sync_actions()
        self.image_shown.emit(xray.path)

    @Slot(object)
    def _on_prediction(self, prediction: Prediction) -> None:
        self._prediction = prediction
        self.results.show_prediction(prediction)
        self.timings["probabilities"] = time.perf_counter() - self._open_started
        self._update_timing_label()
        self._sync_actions()
        self.probabilities_shown.emit(prediction)

    @Slot(object)
    def _on_explanation(self, explanation: Explanation) -> None:
        self._explanation = explanation
        names = self._prediction.display_names if self._prediction else {}
        class_name = names.get(explanation.cam.class_id, explanation.cam.class_id)
        self.view.set_heat_layer(explanation.layer, f"Heat map: {class_name}")
        self.results.show_cam_done(class_name, explanation.cam.seconds)
        self.timings["overlay"] = time.perf_counter() - self._open_started
        self._update_timing_label()
        self.overlay_shown.emit(explanation.cam)

    @Slot(object)
    def _on_failed(self, failure: Failure) -> None:
        self.view.busy_text = ""
        self.statusBar().clearMessage()
        if failure.stage == STAGE_IMAGE:
            self._xray = None
            self.view.clear()
            self.metadata.show_xray(None)
            self.results.clear_results("No image.")
            self.setWindowTitle("XRayDesk")
            self.show_message(f"Cannot open {failure.message}")
        elif failure.stage == STAGE_CAM:
            self.results.show_cam_failed(failure.message)
            self.show_message(f"No heat map: {failure.message}", WARNING)
        else:
            self.results.clear_results(f"No probabilities ({failure.stage} failed).")
            self.show_message(f"The {failure.stage} failed: {failure.message}")
        self._sync_actions()

    @Slot(str)
    def _on_progress(self, text: str) -> None:
        self.view.busy_text = text
        self.view.viewport().update()
        self.statusBar().showMessage(text)

    @Slot()
    def _on_pipeline_finished(self) -> None:
        self.view.busy_text = ""
        self.view.viewport().update()
        if self.timings:
            self.statusBar().showMessage("Ready.", 3000)
        self.analysis_finished.emit()

    def _update_timing_label(self) -> None:
        parts = []
        if "probabilities" in self.timings:
            parts.append(f"probabilities {self.timings['probabilities']:.2f} s")
        if "overlay" in self.timings:
            parts.append(f"heat map {self.timings['overlay']:.2f} s")
        self.timing_label.setText("Open → " + ", ".join(parts) if parts else "")

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
            "if this repeats, please report it with the log."
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
        return self._model_path

    @property
    def device(self) -> str:
        return self._device

    def refresh_models(self) -> None:
        """Re-read the model library (after training, import, rename or delete)."""
        cards = library.list_models()
        known = {str(c.path) for c in cards}
        cards += [c for c in self._extra_models if str(c.path) not in known]
        paths_ = [str(c.path) for c in cards]
        current = str(self._model_path) if self._model_path else self.settings.model
        if current not in paths_:
            current = paths_[0] if paths_ else None
        self.results.set_models(cards, current)
        new_path = Path(current) if current else None
        self.results.show_no_model(None if cards else no_model_message())
        if new_path != self._model_path:
            self._model_path = new_path
            self.model_changed.emit(new_path)
            if self._xray is not None:
                self._rerun()
        self._sync_actions()

    def _remember_outside_model(self, card_path: str) -> None:
        """A card the user chose by path last time (outside the library) stays listed."""
        if not card_path or not card_path.endswith(".json") or not Path(card_path).is_file():
            return
        try:
            card = ModelCard.read(card_path)
        except ModelError as exc:
            log.warning("the model used last time cannot be read: %s", exc)
            return
        self._extra_models.append(card)

    def set_active_model(self, name_or_card_path: str | Path) -> bool:
        """Use this model (a library name or a card path); re-runs the current image."""
        try:
            card = library.resolve_model(name_or_card_path)
        except ModelError as exc:
            self.show_message(str(exc))
            return False
        if card.path is None:
            self.show_message(f"{name_or_card_path}: the model card has no file")
            return False
        card_path = Path(card.path)
        if not any(Path(str(c.path)) == card_path for c in library.list_models()):
            self._extra_models = [c for c in self._extra_models if c.path != card.path] + [card]
        self._model_path = card_path
        self.settings.model = str(card_path)
        self.refresh_models()
        self.model_changed.emit(card_path)
        self.pipeline.preload(card_path, self._device)
        self._rerun()
        return True

    @Slot(str)
    def _on_model_selected(self, card_path: str) -> None:
        path = Path(card_path)
        if path == self._model_path:
            return
        self._model_path = path
        self.settings.model = card_path
        self.model_changed.emit(path)
        self._rerun()

    def _choose_model_file(self) -> None:
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
        self._rerun()

    def _rerun(self) -> None:
        """Classify the current image again (new model or device)."""
        self._prediction = self._explanation = None
        self.view.set_heat_layer(None)
        if self._model_path is None:
            self.pipeline.cancel()
            self.results.clear_results("No probabilities: no model is available.")
            return
        self._open_started = time.perf_counter()
        self.timings = {}
        if self._xray is not None:
            self.results.show_pending("Classifying…")
            self.pipeline.analyse(self._xray, self._model_path, self._device)
        elif self._current_path is not None and self.pipeline.busy:
            self.pipeline.open(self._current_path, self._model_path, self._device)

    @Slot(str)
    def explain_class(self, class_id: str) -> None:
        """Show the heat map for another class (default: the predicted one)."""
        if self._xray is None or self._model_path is None:
            return
        if self._explanation is not None and self._explanation.cam.class_id == class_id:
            return
        self._explanation = None
        self.view.set_heat_layer(None)
        self.results.show_cam_pending()
        self._open_started = time.perf_counter()
        self.pipeline.explain(self._xray, self._model_path, self._device, class_id)

    # ================================================================ view controls
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

    def _toggle_full_screen(self) -> None:
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
            index = self.preset_combo.findText(state.preset or "")
            if index < 0:
                if self.preset_combo.findText("Custom") < 0:
                    self.preset_combo.addItem("Custom")
                index = self.preset_combo.findText("Custom")
            elif self.preset_combo.findText("Custom") >= 0:
                self.preset_combo.removeItem(self.preset_combo.findText("Custom"))
                index = self.preset_combo.findText(state.preset or "")
            self.preset_combo.setCurrentIndex(index)
        if "zoom" in changed:
            self.zoom_label.setText(f"Zoom {state.zoom * 100:.0f}%")

    def _on_cursor(self, info: tuple[int, int, float] | None) -> None:
        if info is None:
            self.cursor_label.setText("")
            return
        col, row, value = info
        shown = f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"
        self.cursor_label.setText(f"x {col}  y {row}   value {shown}")

    def _sync_actions(self) -> None:
        has_image = self._xray is not None
        has_result = self._prediction is not None
        for name in (
            "fit",
            "actual_size",
            "zoom_in",
            "zoom_out",
            "invert",
            "preset_file",
            "preset_full",
            "preset_lung",
            "preset_mediastinum",
            "reset_window",
            "export_image",
        ):
            self.actions_by_id[name].setEnabled(has_image)
        self.preset_combo.setEnabled(has_image)
        self.actions_by_id["export_report"].setEnabled(has_result)

    # ================================================================ exports
    def export_image(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Save the image as shown (window, inversion, heat map) as a PNG."""
        if self._xray is None:
            self.show_message("Nothing to export: open an image first.", INFO)
            return None
        if not path:
            default = Path(self.settings.last_folder or Path.home()) / (
                f"{self._xray.path.stem}-view.png"
            )
            path, _ = QFileDialog.getSaveFileName(self, "Export image", str(default), "PNG (*.png)")
            if not path:
                return None
        out = Path(path)
        if not self.view.composed_image().save(str(out), "PNG"):
            self.show_message(f"{out}: cannot write the image (check the folder and free space).")
            return None
        self.statusBar().showMessage(f"Image saved to {out}", 6000)
        return out

    def export_report(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Write the one-page PDF report for the current image and prediction."""
        if self._xray is None or self._prediction is None:
            self.show_message(
                "Nothing to report yet: open an image and wait for the probabilities.", INFO
            )
            return None
        if not path:
            default = Path(self.settings.last_folder or Path.home()) / (
                f"{self._xray.path.stem}-report.pdf"
            )
            path, _ = QFileDialog.getSaveFileName(
                self, "Export report", str(default), "PDF (*.pdf)"
            )
            if not path:
                return None
        heat_map = None
        if self._explanation is not None and self.state.overlay_visible:
            names = self._prediction.display_names
            cid = self._explanation.cam.class_id
            heat_map = (
                f"Grad-CAM for “{names.get(cid, cid)}”, opacity "
                f"{self.state.overlay_opacity * 100:.0f}%"
            )
        window = self.state.window
        window_text = ""
        if window is not None:
            window_text = f"Window {format_window(window)}"
            window_text += " (inverted)" if self.state.invert else ""
        content = ReportContent(
            image=self.view.composed_image(),
            source_name=self._xray.path.name,
            prediction=self._prediction,
            heat_map=heat_map,
            window=window_text,
        )
        try:
            out = write_report(Path(path), content)
        except XRayDeskError as exc:
            self.show_message(str(exc))
            return None
        self.statusBar().showMessage(f"Report saved to {out}", 6000)
        return out

    # ================================================================ help
    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_about(self) -> AboutDialog:
        cards = library.list_models()
        cards += [c for c in self._extra_models if c not in cards]
        dialog = AboutDialog(cards, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # ================================================================ tool panels
    def add_tool_panel(self, widget: QWidget, title: str) -> QDockWidget:
        """Dock another tool (batch, fine-tuning) on the left, tabbed with the others.

        A widget with an ``open_image_requested(Path)`` signal gets it connected to
        ``open_path``, so double-clicking a row opens the image here.
        """
        dock = QDockWidget(title, self)
        dock.setObjectName(f"toolPanel:{title}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        if self._tool_docks:
            self.tabifyDockWidget(self._tool_docks[-1], dock)
        self._tool_docks.append(dock)
        self.panels_menu.addAction(dock.toggleViewAction())
        signal = getattr(widget, "open_image_requested", None)
        if signal is not None:
            signal.connect(self.open_path)
        dock.show()
        dock.raise_()
        return dock

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
            stop = getattr(dock.widget(), "shutdown", None)
            if stop is not None:
                stop()
        self.pipeline.cancel()
        self.pipeline.wait(timeout_ms)
        self.state.unsubscribe(self._on_state_changed)
        self.view.detach()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.WindowStateChange:
            self.actions_by_id["full_screen"].setChecked(self.isFullScreen())
        super().changeEvent(event)

    @property
    def current_xray(self) -> XRay | None:
        return self._xray

    @property
    def current_prediction(self) -> Prediction | None:
        return self._prediction

    @property
    def current_explanation(self) -> Explanation | None:
        return self._explanation


def device_available(choice: str) -> bool:
    """Whether a device choice can work on this machine (unavailable ones are greyed out)."""
    if choice == "cuda":
        return torch.cuda.is_available()
    if choice == "mps":
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    return True


def _local_paths(mime) -> list[Path]:
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
