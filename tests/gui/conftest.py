"""GUI test fixtures: offscreen Qt, a main window on the test model, a leak check.

QT_QPA_PLATFORM is set here, at import, before any QApplication exists, so the tests
run without a display (CI, this machine).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication

SIIM_DICOM = "dicom/siim-cr-jpeg-baseline.dcm"
NIH_PNG = "fullres/nih-00000001_000.png"
WAIT_MS = 120_000  # generous: CI machines are slow and share their cores


def flush_deletes() -> None:
    """Run pending deleteLater() calls, so closed windows really go away."""
    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QCoreApplication.processEvents()


@pytest.fixture(autouse=True)
def no_leaked_widgets(qapp: QApplication) -> Iterator[None]:
    """Fail a test that leaves top-level widgets behind (as napari's test suite does)."""
    before = qapp.topLevelWidgets()  # held, so no new widget can reuse their ids
    known = {id(w) for w in before}
    yield
    flush_deletes()
    leaked = [w for w in qapp.topLevelWidgets() if id(w) not in known]
    if leaked:
        names = ", ".join(f"{type(w).__name__}({w.objectName()!r})" for w in leaked)
        for widget in leaked:  # do not let one leak fail every later test
            widget.close()
            widget.deleteLater()
        flush_deletes()
        pytest.fail(f"test leaked {len(leaked)} top-level widget(s): {names}")


@pytest.fixture
def make_window(qapp: QApplication, test_model_path: Path):
    """Build main windows on the test model (CPU); all are closed and deleted after the test."""
    from xraydesk.gui.app import apply_theme
    from xraydesk.gui.main_window import MainWindow

    apply_theme(qapp)  # test what users see
    windows: list[MainWindow] = []

    def make(size: tuple[int, int] | None = (1280, 800), **kwargs) -> MainWindow:
        kwargs.setdefault("model", test_model_path)
        kwargs.setdefault("device", "cpu")
        window = MainWindow(**kwargs)
        if size is not None:  # None: keep the geometry restored from the settings
            window.resize(*size)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()  # waits for its workers
        window.deleteLater()
    flush_deletes()


@pytest.fixture
def main_window(make_window):
    return make_window()


@pytest.fixture
def dicom_path(samples_dir: Path) -> Path:
    return samples_dir / SIIM_DICOM


@pytest.fixture
def png_path(samples_dir: Path) -> Path:
    return samples_dir / NIH_PNG


def wait_for(qtbot, window, until: str, action) -> None:
    """Run ``action`` and wait for the window's ``until`` signal; fail at once on an error."""
    seen: list[object] = []
    errors: list[str] = []

    def on_done(*args: object) -> None:
        seen.append(args)

    def on_error(message: str) -> None:
        errors.append(message)

    signal = getattr(window, until)
    signal.connect(on_done)
    window.error_shown.connect(on_error)
    try:
        action()
        qtbot.waitUntil(lambda: bool(seen or errors), timeout=WAIT_MS)
    finally:
        signal.disconnect(on_done)
        window.error_shown.disconnect(on_error)
    assert not errors, f"the window showed an error: {errors}"


def open_and_wait(qtbot, window, path: Path, until: str = "overlay_shown") -> None:
    """Open through the window's one entry point and wait for the named signal."""
    wait_for(qtbot, window, until, lambda: window.open_path(path))


@pytest.fixture
def panel(qtbot, test_model_path):
    """A shown batch panel on the session's small test model (a file may define its own)."""
    from xraydesk.gui.batch_panel import BatchPanel

    widget = BatchPanel()
    widget.set_model(test_model_path, "cpu")
    widget.resize(900, 600)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown()
