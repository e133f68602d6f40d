"""Issue 29: every action in the main window's menus and toolbar runs once without error.

Tools > Compare with… raised a TypeError from every way in (the action's ``checked``
flag arrived as the path); a test that triggers each action once would have caught it.
File dialogs answer with real files (a sample radiograph, the test model's card, a
file in tmp_path); modal boxes are closed as they appear; windows an action opens
(About, shortcuts, the model manager, the wizard) are closed after it. Any exception
fails the test (pytest-qt), and so does a banner saying "Unexpected error". Runs
offscreen here and in a real X server (tests/integration/test_real_x.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QMenu, QMessageBox, QWidget

from tests.gui.conftest import flush_deletes, open_and_wait
from xraydesk.gui.tools import install_tools

SETTLE_MS = 150  # lets queued work an action started (a load, a job) begin and report


def menu_and_toolbar_actions(window) -> list[tuple[str, QAction]]:
    """Every triggerable action: menus (submenus filled as when opened), then toolbar."""
    found: list[tuple[str, QAction]] = []
    seen: set[int] = set()

    def walk(menu: QMenu, where: str) -> None:
        menu.aboutToShow.emit()  # File > Open recent fills itself here
        for action in menu.actions():
            if action.isSeparator() or id(action) in seen:
                continue
            label = f"{where} > {action.text().replace('&', '')}"
            if action.menu() is not None:
                walk(action.menu(), label)
                continue
            seen.add(id(action))
            found.append((label, action))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), top.text().replace("&", ""))
    for action in window.toolbar.actions():
        if not action.isSeparator() and id(action) not in seen and action.text():
            seen.add(id(action))
            found.append((f"toolbar > {action.text()}", action))
    return found


def close_modal_widgets() -> None:
    """What a user would do with a box that blocks: close it."""
    modal = QApplication.activeModalWidget()
    if isinstance(modal, QMessageBox | QDialog):
        modal.reject()
    elif modal is not None:
        modal.close()


@pytest.fixture
def real_file_dialogs(monkeypatch, png_path: Path, test_model_path: Path, tmp_path: Path):
    """QFileDialog's static functions answer at once with real paths."""
    saved: list[str] = []

    def open_name(parent=None, caption="", folder="", filters="", *args, **kwargs):
        return (str(test_model_path) if ".json" in filters else str(png_path)), ""

    def open_names(*args, **kwargs):
        return [str(png_path)], ""

    def save_name(parent=None, caption="", folder="", filters="", *args, **kwargs):
        suffix = Path(folder).suffix or ".png"
        for ext in (".pdf", ".png", ".csv", ".json", ".html", ".dcm"):
            if f"*{ext}" in filters:
                suffix = ext
                break
        path = tmp_path / f"saved-{len(saved)}{suffix}"
        saved.append(str(path))
        return str(path), ""

    def folder(*args, **kwargs):
        return str(png_path.parent)

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(open_name))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(open_names))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_name))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(folder))
    return saved


@pytest.mark.data
@pytest.mark.slow
def test_every_menu_and_toolbar_action_runs_without_error(
    qtbot, make_window, dicom_path, real_file_dialogs
):
    window = make_window(size=(1600, 1000))
    install_tools(window)
    # the empty compare pane points at Compare with…, not at File > Open (which replaces
    # the main image)
    assert "Compare with" in window.compare_view.empty_text
    assert "Ctrl+O)" not in window.compare_view.empty_text
    open_and_wait(qtbot, window, dicom_path)
    errors: list[str] = []
    window.error_shown.connect(errors.append)
    compared: list[object] = []
    window.compare_loader.loaded.connect(compared.append)
    closer = QTimer()
    closer.timeout.connect(close_modal_widgets)
    closer.start(50)
    ours = {id(w) for w in QApplication.topLevelWidgets()}
    actions = menu_and_toolbar_actions(window)
    quit_action = window.actions_by_id["quit"]
    ran: list[str] = []
    try:
        for label, action in actions:
            if action is quit_action:
                continue
            if action.isEnabled():
                ran.append(label)
            action.trigger()
            qtbot.wait(SETTLE_MS)
            unexpected = [e for e in errors if "Unexpected error" in e or "Traceback" in e]
            assert not unexpected, f"{label}: {unexpected}"
            assert "Unexpected error" not in window.banner.text, f"{label}: {window.banner.text}"
            for widget in QApplication.topLevelWidgets():  # dialogs and windows it opened
                if id(widget) not in ours and widget.isVisible() and isinstance(widget, QWidget):
                    widget.close()
            if window.isFullScreen():
                window.showNormal()
        # the compare action really compared (its bug: a TypeError from every way in)
        qtbot.waitUntil(lambda: bool(compared), timeout=60_000)
    finally:
        closer.stop()
    assert len(ran) >= 30, ran  # the menus were really walked
    assert any("Compare" in label for label in ran)
    assert not [e for e in errors if "Cannot compare" in e], errors
    quit_action.trigger()
    qtbot.waitUntil(lambda: not window.isVisible())
    flush_deletes()
