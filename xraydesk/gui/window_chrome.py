"""The main window's chrome: docks, actions, menus, toolbar and status bar.

Built here, once (the actions from the shortcut table), so the window class keeps only
what the viewer does. ``build_chrome`` returns what it made as one record (``Chrome``:
the model actions, menus, device group, toolbar, preset combo and status labels) for the
window to keep; the builders set no attribute on the window (they fill only the window's
own ``actions_by_id`` table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QLabel,
    QMenu,
    QMenuBar,
    QScrollArea,
    QTabWidget,
    QToolBar,
    QWidget,
)

from xraydesk import paths
from xraydesk.gui import reading_room
from xraydesk.gui.image_view import TOOL_ANGLE, TOOL_PAN, TOOL_RULER
from xraydesk.gui.shortcuts import SHORTCUTS
from xraydesk.model.device import DEVICE_CHOICES, device_available
from xraydesk.viewer.windowing import (
    PRESET_FILE,
    PRESET_FULL,
    PRESET_LUNG,
    PRESET_MEDIASTINUM,
    PRESET_NAMES,
)

if TYPE_CHECKING:
    from xraydesk.gui.main_window import MainWindow

OPACITY_STEP = 0.1
SIDE_PANEL_WIDTH = 360
ICONS = {  # action id -> icon file (resources/icons/NAME.svg)
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
    "tool_ruler": "ruler",
    "tool_angle": "angle",
    "magnifier": "magnifier",
    "compare": "compare",
}
DEVICE_LABELS = {
    "auto": "Automatic (GPU if present)",
    "cpu": "CPU",
    "cuda": "CUDA GPU",
    "mps": "Apple GPU",
}
# actions that need an image on screen (greyed out otherwise)
IMAGE_ACTIONS = (
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
    "tool_ruler",
    "tool_angle",
    "magnifier",
    "clear_measurements",
    "compare",
    *reading_room.IMAGE_ACTIONS,
)


@dataclass(frozen=True)
class Chrome:
    """What the chrome builders made and the window keeps (its public names copy these)."""

    about_action: QAction
    refresh_models_action: QAction
    open_model_action: QAction
    recent_menu: QMenu
    panels_menu: QMenu
    model_menu: QMenu
    device_group: QActionGroup
    toolbar: QToolBar
    preset_combo: QComboBox
    cursor_label: QLabel
    window_label: QLabel
    zoom_label: QLabel
    timing_label: QLabel


def build_chrome(w: MainWindow, side_dock: QDockWidget) -> Chrome:
    """Actions, menus, toolbar and status bar, in that order (menus use the actions)."""
    about, refresh, open_model = build_actions(w)
    recent, panels, model, devices = build_menus(w, side_dock, (about, refresh, open_model))
    toolbar, combo = build_toolbar(w)
    cursor, window, zoom, timing = build_status_bar(w)
    return Chrome(
        about_action=about,
        refresh_models_action=refresh,
        open_model_action=open_model,
        recent_menu=recent,
        panels_menu=panels,
        model_menu=model,
        device_group=devices,
        toolbar=toolbar,
        preset_combo=combo,
        cursor_label=cursor,
        window_label=window,
        zoom_label=zoom,
        timing_label=timing,
    )


def icon(name: str) -> QIcon:
    path = paths.resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


# ============================================================================ docks
def build_side_dock(w: MainWindow, tabs: tuple[tuple[QWidget, str], ...]) -> QDockWidget:
    """The analysis dock on the right: one scrolling tab per panel, no title bar."""
    side_tabs = QTabWidget()
    side_tabs.setObjectName("sideTabs")
    side_tabs.setDocumentMode(True)
    for widget, title in tabs:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(widget)
        side_tabs.addTab(scroll, title)
    dock = QDockWidget("Analysis", w)
    dock.setObjectName("analysisDock")
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
    dock.setTitleBarWidget(QWidget())  # no title bar: the tabs say what it is
    dock.setWidget(side_tabs)
    dock.setMinimumWidth(SIDE_PANEL_WIDTH)
    w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    return dock


def tool_dock(w: MainWindow, widget: QWidget, title: str) -> QDockWidget:
    """A dock for a tool panel (batch, fine-tuning): movable, closable, floatable."""
    dock = QDockWidget(title, w)
    dock.setObjectName(f"toolPanel:{title}")
    dock.setWidget(widget)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable
        | QDockWidget.DockWidgetFeature.DockWidgetClosable
        | QDockWidget.DockWidgetFeature.DockWidgetFloatable
    )
    return dock


# ============================================================================ actions
def _handlers(w: MainWindow) -> dict[str, Callable[[], object]]:
    """What each shortcut-table action does."""
    state = w.state
    return {
        "open": w.open_file_dialog,
        "previous": w.previous_image,
        "next": w.next_image,
        "export_report": lambda: w.export_report(),
        "export_image": lambda: w.export_image(),
        "quit": w.close,
        "fit": w.view.fit,
        "actual_size": w.view.actual_size,
        "zoom_in": lambda: w.view.zoom_by(1.25),
        "zoom_out": lambda: w.view.zoom_by(0.8),
        "invert": lambda: w.set_invert(not state.invert),
        "full_screen": w.toggle_full_screen,
        "preset_file": lambda: w.set_window_preset(PRESET_FILE),
        "preset_full": lambda: w.set_window_preset(PRESET_FULL),
        "preset_lung": lambda: w.set_window_preset(PRESET_LUNG),
        "preset_mediastinum": lambda: w.set_window_preset(PRESET_MEDIASTINUM),
        "reset_window": w.reset_window,
        "toggle_overlay": w.toggle_heat_map,
        "opacity_up": lambda: w.set_overlay_opacity(state.overlay_opacity + OPACITY_STEP),
        "opacity_down": lambda: w.set_overlay_opacity(state.overlay_opacity - OPACITY_STEP),
        "tool_ruler": lambda: w.set_tool(TOOL_RULER if w.view.tool != TOOL_RULER else TOOL_PAN),
        "tool_angle": lambda: w.set_tool(TOOL_ANGLE if w.view.tool != TOOL_ANGLE else TOOL_PAN),
        "magnifier": lambda: w.set_magnifier(not w.view.magnifier),
        "clear_measurements": w.view.clear_measurements,
        "compare": lambda: w.compare_with(),  # not triggered(checked): no path
        "close_compare": w.close_compare,
        "dismiss": w.banner.dismiss,
        "shortcuts": w.show_shortcuts,
        **reading_room.handlers(w),
    }


def build_actions(w: MainWindow) -> tuple[QAction, QAction, QAction]:
    """One QAction per shortcut-table entry (into ``w.actions_by_id``); returns the other
    three: About, Refresh model list, Use a model file."""
    handlers = _handlers(w)
    for shortcut in SHORTCUTS:
        action = QAction(shortcut.text, w)
        action.setShortcuts([QKeySequence(k) for k in shortcut.keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if shortcut.action in ICONS:
            action.setIcon(icon(ICONS[shortcut.action]))
        keys = ", ".join(
            QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in shortcut.keys
        )
        action.setToolTip(f"{shortcut.text.replace('&', '')} ({keys})")
        action.triggered.connect(handlers[shortcut.action])
        w.addAction(action)  # shortcuts work even with the menu bar hidden
        w.actions_by_id[shortcut.action] = action
    for name in (
        "invert",
        "toggle_overlay",
        "full_screen",
        "tool_ruler",
        "tool_angle",
        "magnifier",
    ):
        w.actions_by_id[name].setCheckable(True)
    w.actions_by_id["toggle_overlay"].setChecked(w.state.overlay_visible)
    reading_room.install(w)
    about = QAction("&About XRayDesk", w)
    about.triggered.connect(w.show_about)
    refresh = QAction("&Refresh model list", w)
    refresh.triggered.connect(w.refresh_models)
    open_model = QAction("Use a model &file…", w)
    open_model.triggered.connect(w.choose_model_file)
    return about, refresh, open_model


# ============================================================================ menus
def build_menus(
    w: MainWindow, side_dock: QDockWidget, model_actions: tuple[QAction, QAction, QAction]
) -> tuple[QMenu, QMenu, QMenu, QActionGroup]:
    """The menu bar; returns the menus the window fills later (recent files, panels,
    model) and the device group."""
    about, refresh, open_model = model_actions
    bar = w.menuBar()
    recent = _file_menu(w, bar)
    panels = _view_menu(w, bar, side_dock)
    window_menu = bar.addMenu("&Window")
    for name in ("preset_file", "preset_full", "preset_lung", "preset_mediastinum"):
        window_menu.addAction(w.actions_by_id[name])
    window_menu.addSeparator()
    window_menu.addAction(w.actions_by_id["reset_window"])
    tools_menu = bar.addMenu("&Tools")
    for group in (
        ("tool_ruler", "tool_angle", "tool_ctr", "magnifier", "clear_measurements"),
        ("compare", "close_compare", "compare_prior", "studies"),
        ("tag_browser",),
    ):
        for name in group:
            tools_menu.addAction(w.actions_by_id[name])
        tools_menu.addSeparator()
    model, devices = _model_menu(w, bar, open_model, refresh)
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(w.actions_by_id["shortcuts"])
    help_menu.addAction(about)
    return recent, panels, model, devices


def _file_menu(w: MainWindow, bar: QMenuBar) -> QMenu:
    a = w.actions_by_id
    menu = bar.addMenu("&File")
    menu.addAction(a["open"])
    recent = QMenu("Open &recent", w)
    recent.aboutToShow.connect(lambda: fill_recent_menu(w, recent))
    menu.addMenu(recent)
    fill_recent_menu(w, recent)
    for group in (("previous", "next"), ("export_report", "export_image"), ("quit",)):
        menu.addSeparator()
        for name in group:
            menu.addAction(a[name])
    return recent


def _view_menu(w: MainWindow, bar: QMenuBar, side_dock: QDockWidget) -> QMenu:
    a = w.actions_by_id
    menu = bar.addMenu("&View")
    for name in ("fit", "actual_size", "zoom_in", "zoom_out"):
        menu.addAction(a[name])
    menu.addSeparator()
    for name in ("invert", "toggle_overlay", "opacity_up", "opacity_down"):
        menu.addAction(a[name])
    menu.addSeparator()
    for name in reading_room.VIEW_MENU:
        menu.addAction(a[name])
    menu.addSeparator()
    menu.addAction(a["full_screen"])
    panels = menu.addMenu("&Panels")
    panels.addAction(side_dock.toggleViewAction())
    side_dock.toggleViewAction().setText("Analysis panel")
    return panels


def _model_menu(
    w: MainWindow, bar: QMenuBar, open_model: QAction, refresh: QAction
) -> tuple[QMenu, QActionGroup]:
    menu = bar.addMenu("&Model")
    menu.addAction(open_model)
    menu.addAction(refresh)
    device_menu = menu.addMenu("&Device")
    group = QActionGroup(w)
    for choice in DEVICE_CHOICES:
        action = QAction(DEVICE_LABELS.get(choice, choice), w, checkable=True)
        action.setData(choice)
        action.setChecked(choice == w.device)
        action.setEnabled(device_available(choice))
        action.triggered.connect(lambda _=False, c=choice: w.set_device(c))
        group.addAction(action)
        device_menu.addAction(action)
    return menu, group


def fill_recent_menu(w: MainWindow, menu: QMenu) -> None:
    """File > Open recent, re-read from the settings each time it opens."""
    menu.clear()
    recent = w.settings.recent_files
    for i, entry in enumerate(recent):
        path = Path(entry)
        action = menu.addAction(f"&{(i + 1) % 10}  {path.name}")
        action.setToolTip(str(path))
        action.setStatusTip(str(path))
        action.triggered.connect(lambda _=False, p=path: w.open_path(p))
    if not recent:
        menu.addAction("No recent files").setEnabled(False)
    menu.addSeparator()
    clear = menu.addAction("Clear list")
    clear.setEnabled(bool(recent))
    clear.triggered.connect(w.settings.clear_recent_files)


# ============================================================================ bars
def build_toolbar(w: MainWindow) -> tuple[QToolBar, QComboBox]:
    """The main toolbar and its window-preset combo."""
    a = w.actions_by_id
    bar = QToolBar("Main", w)
    bar.setObjectName("mainToolbar")
    bar.setMovable(False)
    bar.setIconSize(QSize(20, 20))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    for group in (("open", "previous", "next"), ("fit", "actual_size", "zoom_in", "zoom_out")):
        for name in group:
            bar.addAction(a[name])
        bar.addSeparator()
    bar.addAction(a["invert"])
    for name in ("tool_ruler", "tool_angle", "magnifier", "compare"):
        bar.addAction(a[name])
    label = QLabel("  Window ")
    label.setObjectName("toolbarLabel")
    bar.addWidget(label)
    combo = QComboBox()
    combo.setObjectName("presetCombo")
    combo.setToolTip("Window presets (F2–F5); right-drag on the image for custom")
    combo.addItems(PRESET_NAMES)
    combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    combo.activated.connect(lambda i: w.set_window_preset(combo.itemText(i)))
    bar.addWidget(combo)
    bar.addAction(a["reset_window"])
    bar.addSeparator()
    bar.addAction(a["toggle_overlay"])
    bar.addSeparator()
    bar.addAction(a["export_report"])
    bar.addAction(a["export_image"])
    bar.addSeparator()  # tool panels' show/hide buttons follow (MainWindow.add_tool_panel)
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    return bar, combo


def build_status_bar(w: MainWindow) -> tuple[QLabel, QLabel, QLabel, QLabel]:
    """The status bar's cursor, window, zoom and timing readouts."""
    status = w.statusBar()
    labels = (QLabel(), QLabel(), QLabel(), QLabel())
    labels[0].setMinimumWidth(230)  # the cursor readout
    for label in labels:
        label.setObjectName("statusValue")
        status.addPermanentWidget(label)
    status.showMessage("Ready. Open a chest radiograph with Ctrl+O or drop a file here.")
    return labels


def show_preset(combo: QComboBox, preset: str | None) -> None:
    """Select the preset in the toolbar combo; "Custom" is listed only while a custom
    window is on screen."""
    index = combo.findText(preset or "")
    if index < 0:
        if combo.findText("Custom") < 0:
            combo.addItem("Custom")
        index = combo.findText("Custom")
    elif combo.findText("Custom") >= 0:
        combo.removeItem(combo.findText("Custom"))
        index = combo.findText(preset or "")
    combo.setCurrentIndex(index)


def cursor_text(info: tuple[int, int, float] | None) -> str:
    """The status bar's pixel readout ("" when the cursor is off the image)."""
    if info is None:
        return ""
    col, row, value = info
    shown = f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"
    return f"x {col}  y {row}   value {shown}"
