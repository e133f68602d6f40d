"""The training wizard's data page fed hostile picks (the folder and CSV dialogs patched to
return them): each is named with its cause on the page, none reaches the log as a
traceback, and a named pipe inside a class folder is left out without blocking the check.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from tests.gui.hostile_paths import NON_UTF8, link_loop
from xraydesk.gui.wizard.data_page import DataPage

WAIT_MS = 60_000


@pytest.fixture
def page(qtbot, caplog):
    caplog.set_level(logging.ERROR)
    widget = DataPage()
    qtbot.addWidget(widget)
    yield widget
    widget.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback


def _pick(page: DataPage, monkeypatch, path: Path, csv: bool = False) -> None:
    if csv:
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
        page._pick_csv()
    else:
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(path))
        page._pick_folder()


def _settled(qtbot, page: DataPage) -> None:
    qtbot.waitUntil(
        lambda: not page._debounce.isActive() and not page.is_checking(), timeout=WAIT_MS
    )


def _hostile(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    fifo = tmp_path / "fifo-folder"
    os.mkfifo(fifo)
    return {
        "fifo": (fifo, "named pipe"),
        "loop": (link_loop(tmp_path / "loop"), "loop of symbolic links"),
        "long": (tmp_path / ("a" * 300), "too long"),
    }


@pytest.mark.parametrize("case", ["fifo", "loop", "long"])
@pytest.mark.parametrize("csv", [False, True], ids=["folder", "csv"])
def test_a_path_naming_no_source_is_refused_with_its_cause(
    qtbot, page, monkeypatch, tmp_path, case, csv
):
    path, cause = _hostile(tmp_path)[case]
    _pick(page, monkeypatch, path, csv)
    _settled(qtbot, page)
    assert page.source_paths() == []  # not listed as data
    text = page.status.text()
    assert str(path) in text and cause in text
    assert not page.isComplete()


def test_a_file_where_a_folder_is_expected_is_read_as_a_manifest_and_named(
    qtbot, page, monkeypatch, tmp_path
):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    _pick(page, monkeypatch, notes)
    _settled(qtbot, page)
    text = page.status.text()
    assert str(notes) in text and "header row" in text
    assert not page.isComplete()
    assert notes.read_text() == "hello\n"  # only read


def _images(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k in range(count):
        pixels = rng.integers(0, 255, (96, 96), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{k}.png")


def test_a_pipe_an_empty_file_and_a_non_utf8_name_in_a_class_folder(
    qtbot, page, monkeypatch, tmp_path
):
    root = tmp_path / "data"
    _images(root / "normal", 10, seed=1)
    _images(root / "pneumonia", 10, seed=2)
    os.mkfifo(root / "normal" / "x.png")  # opened for reading, it would block for good
    (root / "normal" / "x2.png").write_bytes(b"")
    odd = np.random.default_rng(3).integers(0, 255, (96, 96), dtype=np.uint8)
    Image.fromarray(odd).save(root / "pneumonia" / NON_UTF8, "PNG")
    _pick(page, monkeypatch, root)
    _settled(qtbot, page)
    assert page.isComplete(), page.status.text()
    report = page.outcome.report
    assert report.counts == {"normal": 10, "pneumonia": 11}  # the odd name is used
    problems = page.problems.toPlainText()
    assert "x.png" in problems and "named pipe" in problems
    assert "x2.png" in problems and "empty file" in problems
    assert "21 usable images" in page.status.text()


def test_a_refusal_is_in_the_problem_colour_and_the_next_line_is_not(
    qtbot, page, monkeypatch, tmp_path
):
    """The "Not added: …" line was drawn like "Checking images…": easy to miss."""
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    from xraydesk import paths as app_paths

    app = QApplication.instance()
    before = app.styleSheet()
    app.setStyleSheet((app_paths.resources_dir() / "style" / "dark.qss").read_text("utf-8"))
    try:
        path, _ = _hostile(tmp_path)["fifo"]
        _pick(page, monkeypatch, path)
        colour = page.status.palette().color(QPalette.ColorRole.WindowText)
        assert colour == QColor("#ff8a80"), colour.name()
        data = tmp_path / "data"
        (data / "normal").mkdir(parents=True)
        assert page.add_source(data), page.status.text()
        assert page.status.text() == f"Added: {data}"
        colour = page.status.palette().color(QPalette.ColorRole.WindowText)
        assert colour != QColor("#ff8a80")
        _settled(qtbot, page)
    finally:
        app.setStyleSheet(before)
