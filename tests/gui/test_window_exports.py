"""File > Export image and File > Export report given a hostile target (the save dialog
patched to return it, as a user would pick it): a named pipe, a folder, a dangling link,
a read-only folder and the image on screen. Each is refused in the banner naming the
path and the cause; nothing blocks (a pipe had Qt wait for a reader for good) and the
film on screen is never replaced by its own export.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from tests.gui.conftest import open_and_wait
from tests.hostile_files import small_png

ACTIONS = {"export_image": ".png", "export_report": ".pdf"}


@pytest.fixture
def opened(qtbot, main_window, tmp_path: Path):
    """A window with a PNG on screen and its probabilities shown."""
    film = tmp_path / "film.png"
    film.write_bytes(small_png())
    open_and_wait(qtbot, main_window, film)
    return main_window, film


def trigger_with(window, monkeypatch, action: str, target: Path) -> list[str]:
    """Trigger the action with the save dialog answering ``target``; the errors shown."""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    errors: list[str] = []
    window.error_shown.connect(errors.append)
    try:
        window.actions_by_id[action].trigger()
    finally:
        window.error_shown.disconnect(errors.append)
    return errors


def refused(errors: list[str], target: Path, cause: str) -> None:
    assert len(errors) == 1, errors
    assert str(target) in errors[0] and cause in errors[0], errors
    assert "unexpected" not in errors[0].lower()


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_named_pipe_is_refused_without_blocking(opened, monkeypatch, tmp_path, action):
    window, _ = opened
    pipe = tmp_path / f"pipe{ACTIONS[action]}"
    os.mkfifo(pipe)
    refused(trigger_with(window, monkeypatch, action, pipe), pipe, "named pipe")
    assert pipe.is_fifo()


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_folder_is_refused(opened, monkeypatch, tmp_path, action):
    window, _ = opened
    folder = tmp_path / f"folder{ACTIONS[action]}"
    folder.mkdir()
    refused(trigger_with(window, monkeypatch, action, folder), folder, "it is a folder")
    assert folder.is_dir() and not any(folder.iterdir())


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_the_image_on_screen_is_never_overwritten(opened, monkeypatch, action):
    window, film = opened
    before = film.read_bytes()
    refused(trigger_with(window, monkeypatch, action, film), film, "open image")
    assert film.read_bytes() == before


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_link_to_the_image_on_screen_is_refused(opened, monkeypatch, tmp_path, action):
    window, film = opened
    link = tmp_path / f"link{ACTIONS[action]}"
    link.symlink_to(film)
    before = film.read_bytes()
    refused(trigger_with(window, monkeypatch, action, link), link, "open image")
    assert film.read_bytes() == before


@contextmanager
def unwritable_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder no file can be made in: mode 0555, or as root (whom modes do not stop,
    and CI runs as root) sysfs, read-only for everyone."""
    if os.geteuid() == 0:
        if not Path("/sys/kernel").is_dir():
            pytest.skip("running as root and no read-only sysfs to write into")
        yield Path("/sys/kernel")
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_read_only_folder_is_named(opened, monkeypatch, tmp_path, action):
    window, _ = opened
    with unwritable_folder(tmp_path) as folder:
        target = folder / f"out{ACTIONS[action]}"
        errors = trigger_with(window, monkeypatch, action, target)
        refused(errors, target, "cannot write")
        assert not target.exists()


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_dangling_link_is_written_through(opened, monkeypatch, tmp_path, action):
    """A link to nothing is an ordinary new file to write (what the link names)."""
    window, _ = opened
    link = tmp_path / f"dangling{ACTIONS[action]}"
    link.symlink_to(tmp_path / f"elsewhere{ACTIONS[action]}")
    assert trigger_with(window, monkeypatch, action, link) == []
    assert link.stat().st_size > 0


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_name_too_long_is_refused(opened, monkeypatch, tmp_path, action):
    window, _ = opened
    target = tmp_path / ("n" * 300 + ACTIONS[action])
    refused(trigger_with(window, monkeypatch, action, target), target, "too long")
