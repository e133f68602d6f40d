"""The viewer's front doors fed hostile paths: File > Open, a drop, Open recent and
next/previous all end in ``MainWindow.open_path``; each bad file gives one message in the
window's banner naming the file and the cause, the image on screen stays, nothing hangs
(the named pipe is never opened) and no exception escapes a slot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.gui.conftest import WAIT_MS, open_and_wait
from tests.gui.hostile_paths import NEWLINE, NON_UTF8, UNREADABLE, write_hostile_paths
from xraydesk.printable import printable


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_hostile_paths(tmp_path / "in")


def settle(qtbot, window, action) -> list[str]:
    """Run ``action`` and wait until the window has nothing more to show for it."""
    errors: list[str] = []
    window.error_shown.connect(errors.append)
    try:
        action()
        qtbot.waitUntil(lambda: bool(errors) or not window.pipeline.busy, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not window.pipeline.busy, timeout=WAIT_MS)
    finally:
        window.error_shown.disconnect(errors.append)
    return errors


def assert_refused(window, errors: list[str], path: Path, cause: str, kept) -> None:
    assert len(errors) == 1, (path.name, errors)
    message = errors[0]
    assert printable(path.name) in message, (path.name, message)
    assert cause in message.lower(), (path.name, message)
    assert "unexpected" not in message.lower() and "traceback" not in message.lower()
    assert window.banner.text == message
    assert window.current_xray is kept, path.name


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_open_refuses_each_hostile_file_by_name(qtbot, main_window, folder, name):
    open_and_wait(qtbot, main_window, folder / "control.png")
    kept = main_window.current_xray
    errors = settle(qtbot, main_window, lambda: main_window.open_path(folder / name))
    assert_refused(main_window, errors, folder / name, UNREADABLE[name], kept)


@pytest.mark.parametrize("name", [NON_UTF8, NEWLINE])
def test_hostile_names_of_valid_images_open(qtbot, main_window, folder, name):
    open_and_wait(qtbot, main_window, folder / name)
    assert main_window.current_xray is not None
    assert "\n" not in main_window.windowTitle()
    main_window.windowTitle().encode("utf-8")  # no lone surrogate reaches Qt


def test_file_open_dialog_refuses_the_pipe(qtbot, main_window, folder, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(folder / "x.png"), ""))
    errors = settle(qtbot, main_window, main_window.actions_by_id["open"].trigger)
    assert_refused(main_window, errors, folder / "x.png", "named pipe", None)


def test_a_drop_of_a_loop_is_refused(qtbot, main_window, folder):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder / "loop-a.png"))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    errors = settle(qtbot, main_window, lambda: main_window.dropEvent(event))
    assert_refused(main_window, errors, folder / "loop-a.png", "loop", None)


def test_open_recent_of_a_deleted_file(qtbot, main_window, folder):
    from PySide6.QtWidgets import QMenu

    from xraydesk.gui.window_chrome import fill_recent_menu

    gone = folder / "gone.png"
    gone.write_bytes((folder / "control.png").read_bytes())
    main_window.settings.add_recent_file(str(gone))
    gone.unlink()
    menu = QMenu()
    fill_recent_menu(main_window, menu)
    action = next(a for a in menu.actions() if a.toolTip() == str(gone))
    errors = settle(qtbot, main_window, action.trigger)
    assert_refused(main_window, errors, gone, "not found", None)
    menu.deleteLater()


def test_next_over_a_folder_where_a_file_vanished(qtbot, main_window, tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    png = write_hostile_paths(tmp_path / "src") / "control.png"
    for name in ("a.png", "b.png", "c.png"):
        (folder / name).write_bytes(png.read_bytes())
    open_and_wait(qtbot, main_window, folder / "a.png")
    main_window.folder_images.images(folder)  # listed with b.png
    os.utime(folder, ns=(0, folder.stat().st_mtime_ns))  # the stamp the listing holds
    mtime = folder.stat().st_mtime_ns
    (folder / "b.png").unlink()
    os.utime(folder, ns=(mtime, mtime))  # the folder looks unchanged: the listing is stale
    errors = settle(qtbot, main_window, main_window.next_image)
    assert main_window.current_xray is not None
    # the stale listing names b.png: its open says it has gone, and a.png stays
    assert len(errors) == 1 and "b.png: file not found" in errors[0], errors
    assert main_window.current_xray.path.name == "a.png"


def test_next_and_previous_walk_past_every_hostile_entry(qtbot, main_window, folder):
    open_and_wait(qtbot, main_window, folder / "control.png")
    seen = []
    for _ in range(12):
        errors = settle(qtbot, main_window, main_window.next_image)
        assert all("unexpected" not in e.lower() for e in errors), errors
        seen.append(main_window.analysis.current_path)
    names = {p.name for p in seen if p is not None}
    assert "x.png" not in names and "loop-a.png" not in names and "dangling.png" not in names
