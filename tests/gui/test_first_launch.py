"""Issue 29 #2: the first launch gives the image the screen, and panel state sticks.

Written for a real X server with a window manager (tests/integration/test_real_x.py runs this
file under Xvfb + openbox at 1600 x 1000, where a maximised window and docked panels
behave as on a desktop); it runs offscreen too, where the 800 x 600 screen is too small
for the 70 % width check (XRAYDESK_REAL_X=1, set by the real-X run, makes it required).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import WAIT_MS, flush_deletes, open_and_wait

REAL_X = os.environ.get("XRAYDESK_REAL_X") == "1"
MIN_IMAGE_SHARE = 0.7


def _launch(settings_file: Path, model: Path):
    """A main window as ``xraydesk`` opens it: tools installed, shown by the app's rule."""
    from xraydesk.gui.app import apply_theme, show_main_window
    from xraydesk.gui.main_window import MainWindow
    from xraydesk.gui.settings import AppSettings
    from xraydesk.gui.tools import install_tools

    apply_theme(QApplication.instance())
    window = MainWindow(model=model, device="cpu", settings=AppSettings(settings_file))
    install_tools(window)
    show_main_window(window)
    return window


def _fills_screen(window) -> bool:
    available = window.screen().availableGeometry()
    frame = window.frameGeometry()
    return window.isMaximized() or (
        frame.width() >= available.width() - 2 and frame.height() >= available.height() - 2
    )


def _close(window) -> None:
    window.close()
    window.deleteLater()
    flush_deletes()


def _panels(window) -> dict[str, object]:
    return {dock.windowTitle(): dock for dock in window._tool_docks}


@pytest.mark.data
def test_first_launch_is_maximised_with_no_tool_panel_over_the_image(
    qtbot, tmp_path, test_model_path, png_path
):
    window = _launch(tmp_path / "settings.ini", test_model_path)
    try:
        qtbot.waitExposed(window, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: _fills_screen(window), timeout=WAIT_MS)
        assert not [t for t, d in _panels(window).items() if d.isVisible()]
        open_and_wait(qtbot, window, png_path, until="image_shown")
        screen = window.screen().availableGeometry()
        if REAL_X:
            assert (screen.width(), screen.height()) == (1600, 1000), screen
        if REAL_X or screen.width() >= 1400:
            share = window.view.viewport().width() / window.width()
            assert share >= MIN_IMAGE_SHARE, f"the image view has {share:.0%} of the width"
    finally:
        _close(window)


def test_panel_state_is_remembered_across_a_restart(qtbot, tmp_path, test_model_path):
    settings = tmp_path / "settings.ini"
    first = _launch(settings, test_model_path)
    try:
        qtbot.waitExposed(first, timeout=WAIT_MS)
        pacs = _panels(first)["PACS"]
        pacs.toggleViewAction().trigger()  # as the toolbar button does
        qtbot.waitUntil(pacs.isVisible)
        opened = pacs.width()
        first.resizeDocks([pacs], [opened - 50], Qt.Orientation.Horizontal)  # the user narrows it
        qtbot.waitUntil(lambda: pacs.width() < opened - 20)
        width = pacs.width()
    finally:
        _close(first)

    second = _launch(settings, test_model_path)
    try:
        qtbot.waitExposed(second, timeout=WAIT_MS)
        assert _fills_screen(second), "the window did not come back maximised"
        panels = _panels(second)
        qtbot.waitUntil(panels["PACS"].isVisible)
        assert not panels["Batch"].isVisible()
        assert abs(panels["PACS"].width() - width) <= 8, (panels["PACS"].width(), width)
        panels["PACS"].close()  # the user closes it: it stays closed
        qtbot.waitUntil(lambda: not panels["PACS"].isVisible())
    finally:
        _close(second)

    third = _launch(settings, test_model_path)
    try:
        qtbot.waitExposed(third, timeout=WAIT_MS)
        assert not [t for t, d in _panels(third).items() if d.isVisible()]
    finally:
        _close(third)
