"""The main window's view controls: window level, inversion, overlay, reading tools, compare.

A mixin of ``MainWindow`` (it uses the window's ``state``, ``view``, ``compare_view``,
``actions_by_id`` and status labels): what the View and Tools menus do to the image.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Slot

from xraydesk.gui.banner import INFO
from xraydesk.gui.measurements import TOOL_ANGLE, TOOL_CTR, TOOL_RULER
from xraydesk.gui.window_chrome import IMAGE_ACTIONS, cursor_text, show_preset
from xraydesk.imaging.xray import Window
from xraydesk.printable import printable
from xraydesk.viewer.heat_policy import HeatHold
from xraydesk.viewer.windowing import PRESET_FILE, format_window


class ViewControls:
    """The image's display state and the reading tools, kept in step with the actions."""

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

    def toggle_heat_map(self) -> None:
        """The one heat-map action: H, View > Show heat map, the toolbar button, the
        panel's check box and its "Show heat map: what supports Normal" offer all trigger
        it. A map offered but not shown (a Normal answer's) is shown, switched on;
        otherwise the heat map is switched off or on."""
        if self.analysis.heat_held is HeatHold.NORMAL:
            self.set_overlay_visible(True)
            self.analysis.request_heat_map()
        else:
            self.set_overlay_visible(not self.state.overlay_visible)
        # a checkable action and check box toggle themselves: put them back in step
        self.actions_by_id["toggle_overlay"].setChecked(self.state.overlay_visible)
        self.results.set_overlay_checked(self.state.overlay_visible)

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
        self.compare_view.title_text = f"Compared: {printable(path.name)}"
        self.view.fit()
        self.compare_view.fit()
        self.view_link.sync()
