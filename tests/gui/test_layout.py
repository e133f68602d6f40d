"""Issue 19 #5: the image gets the window; the corner text stays put while panning."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import open_and_wait
from xraydesk.gui.tools import install_tools


def test_image_viewport_gets_most_of_a_1600_by_1000_window(make_window, qtbot):
    window = make_window(size=(1600, 1000))
    tools = install_tools(window)  # batch and PACS panels, as the app installs them
    qtbot.waitUntil(lambda: window.view.viewport().width() > 0)
    viewport = window.view.viewport()
    assert viewport.width() >= 0.65 * window.width(), viewport.width()
    assert viewport.height() >= 0.8 * window.height(), viewport.height()
    # the tool panels are a click away (toolbar and View > Panels), not in the way
    assert not tools.batch.isVisible()
    toggle = window._tool_docks[0].toggleViewAction()
    assert toggle in window.toolbar.actions() and toggle in window.panels_menu.actions()
    toggle.trigger()
    qtbot.waitUntil(tools.batch.isVisible)
    qtbot.waitUntil(lambda: tools.batch.width() >= 0.3 * window.width())
    print(
        tools.batch.width(), tools.batch.minimumSizeHint().width(), window.view.viewport().width()
    )
    assert window.view.viewport().width() >= 0.4 * window.width()


def _text_mask(window) -> np.ndarray:
    """Pixels of the corner text's colour in the view's top-left corner, from the screen
    (the backing store: what a pan really left there, not a fresh render)."""
    view = window.view
    origin = view.viewport().mapTo(window, view.viewport().rect().topLeft())
    shot = QGuiApplication.primaryScreen().grabWindow(
        window.winId(), origin.x(), origin.y(), 360, 120
    )
    image = shot.toImage().convertToFormat(shot.toImage().Format.Format_RGB888)
    rgb = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())[
        :, : image.width() * 3
    ]
    rgb = rgb.reshape(image.height(), image.width(), 3).astype(int)
    text = np.array([235, 200, 120])
    return np.abs(rgb - text).max(axis=2) < 40


@pytest.mark.data
def test_window_and_zoom_text_stays_fixed_while_panning(qtbot, main_window, png_path):
    window = main_window
    open_and_wait(qtbot, window, png_path)
    window.set_overlay_visible(False)  # only the film behind the text
    window.view.zoom_to(2.0)
    QApplication.processEvents()  # paint what the zoom changed
    before = _text_mask(window)
    assert before.sum() > 50, "the corner text was not found on screen"
    bar = window.view.horizontalScrollBar()
    for _ in range(5):  # a drag pans in small steps
        bar.setValue(bar.value() + 40)
        QApplication.processEvents()  # the update the pan scheduled, and only that
    after = _text_mask(window)
    overlap = (before & after).sum() / max((before | after).sum(), 1)
    assert overlap > 0.7, f"the corner text moved with the image (overlap {overlap:.2f})"
