"""The app around the viewer: responsiveness, errors, settings, notice, help."""

from __future__ import annotations

import itertools
import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.gui.conftest import WAIT_MS, open_and_wait
from xraydesk import __version__, paths
from xraydesk.classifier.cache import ClassifierCache
from xraydesk.gui.app import _make_excepthook
from xraydesk.gui.settings import SETTINGS_FILE
from xraydesk.gui.shortcuts import SHORTCUTS


@pytest.mark.data
def test_gui_thread_never_blocked_during_open_predict_and_cam(qtbot, make_window, dicom_path):
    """A 10 ms timer on the GUI thread keeps ticking while the model loads, the image
    decodes, the classifier runs and Grad-CAM is computed, all on this CPU.

    Wall-clock gaps alone cannot tell work on the GUI thread from a loaded machine
    descheduling it (two shared cores, other test runs). So each gap is measured twice:
    the GUI thread's own CPU time between two ticks (``time.thread_time``) is work it
    did and must stay under 100 ms, whatever the load; and the wall-clock gap, which
    also catches waiting (on a lock a worker holds), must stay under 250 ms or three
    times the longest gap measured idle in the same run, when the machine is busier.
    """
    window = make_window(cache=ClassifierCache())  # cold: model loading is included
    qtbot.waitUntil(lambda: not window.pipeline.busy)
    ticks: list[tuple[float, float]] = [(time.perf_counter(), time.thread_time())]
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))
    timer.start()
    try:
        qtbot.waitUntil(lambda: len(ticks) > 50, timeout=WAIT_MS)  # idle: the baseline
        idle = [b[0] - a[0] for a, b in itertools.pairwise(ticks)]
        ticks[:] = [(time.perf_counter(), time.thread_time())]
        open_and_wait(qtbot, window, dicom_path)
        ticks.append((time.perf_counter(), time.thread_time()))
    finally:
        timer.stop()
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(ticks)]
    work = [b[1] - a[1] for a, b in itertools.pairwise(ticks)]
    worst, busiest, noise = max(gaps), max(work), max(idle)
    print(
        f"\nopen -> probabilities {window.timings['probabilities']:.2f} s, "
        f"-> overlay {window.timings['overlay']:.2f} s; {len(gaps)} ticks, "
        f"longest GUI-thread gap {worst * 1000:.0f} ms (idle {noise * 1000:.0f} ms), "
        f"most GUI-thread CPU between ticks {busiest * 1000:.0f} ms"
    )
    # the timer ticked through the open; how often depends on how long the open took (8
    # ticks on the AMD EPYC, which opens, classifies and maps this film in under 0.1 s),
    # and the gaps between ticks are judged below
    assert len(gaps) >= 2
    assert busiest < 0.100, f"the GUI thread worked {busiest * 1000:.0f} ms without a break"
    assert worst < max(0.250, 3.0 * noise), f"GUI thread stalled {worst * 1000:.0f} ms"


@pytest.mark.data
def test_excepthook_shows_unexpected_errors_in_the_window(main_window):
    hook = _make_excepthook(main_window)
    try:
        raise RuntimeError("something odd")
    except RuntimeError as exc:
        hook(RuntimeError, exc, exc.__traceback__)
    assert "something odd" in main_window.banner.text
    assert main_window.isVisible()
    main_window.actions_by_id["dismiss"].trigger()
    assert main_window.banner.text == ""


@pytest.mark.data
def test_settings_persist_in_the_data_dir(qtbot, make_window, png_path, tmp_path):
    first = make_window(device=None)  # from the settings: "auto" on a fresh install
    assert first.device == "auto"
    open_and_wait(qtbot, first, png_path, until="image_shown")
    first.set_overlay_opacity(0.55)
    first.set_overlay_visible(False)
    first.set_device("cpu")
    first.resize(700, 500)  # within the offscreen screen, so restoring does not clamp
    first.close()
    assert (paths.data_dir() / SETTINGS_FILE).is_file()
    second = make_window(device=None, size=None)
    assert second.state.overlay_opacity == pytest.approx(0.55)
    assert not second.state.overlay_visible
    assert second.results.opacity_slider.value() == 55
    assert second.device == "cpu"
    assert second.settings.last_folder == str(png_path.parent)
    assert (second.width(), second.height()) == (700, 500)
    assert second.settings.recent_files == [str(png_path)]


def test_first_start_notice_is_shown_once(make_window):
    window = make_window()
    window.show_first_start_notice()
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert len(boxes) == 1
    assert "does not diagnose" in boxes[0].text()
    boxes[0].button(QMessageBox.StandardButton.Ok).click()
    QApplication.processEvents()
    assert window.settings.notice_acknowledged
    window.show_first_start_notice()
    assert not [w for w in window.findChildren(QMessageBox) if w.isVisible()]


def test_shortcut_table_lists_every_action(main_window):
    dialog = main_window.show_shortcuts()
    try:
        table = dialog.table
        texts = {table.item(r, 1).text() for r in range(table.rowCount())}
        for shortcut in SHORTCUTS:
            assert shortcut.text.replace("&", "") in texts
            assert main_window.actions_by_id[shortcut.action].shortcut().toString()
        keys = " ".join(table.item(r, 2).text() for r in range(table.rowCount()))
        assert "Right drag" in keys and "PgDown" in keys
    finally:
        dialog.close()


def test_about_shows_version_model_card_and_licences(main_window):
    dialog = main_window.show_about()
    try:
        assert f"XRayDesk {__version__}" in dialog.title.text()
        models = dialog.models_text.toPlainText()
        assert "test-3class 0.0-test" in models
        assert "Random weights for tests" in models
        licences = dialog.licences_text.toPlainText()
        for name in ("PySide6", "PyTorch", "pydicom", "LGPL-3.0", "BSD-3-Clause"):
            assert name in licences
    finally:
        dialog.close()


@pytest.mark.data
def test_app_main_opens_the_path_with_the_notice_and_exits_cleanly(qapp, png_path, test_model_path):
    """`xraydesk PATH`: the window opens the file, the first-start notice shows once."""
    from xraydesk.gui.app import main
    from xraydesk.gui.main_window import MainWindow

    seen: dict[str, object] = {}
    deadline = time.monotonic() + 120

    def poll() -> None:
        windows = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)]
        window = windows[0] if windows else None
        done = window is not None and window.current_explanation is not None
        if not done and time.monotonic() < deadline:
            QTimer.singleShot(50, poll)
            return
        if window is not None:
            seen["path"] = window.current_xray.path if window.current_xray else None
            boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
            seen["notice"] = bool(boxes) and "does not diagnose" in boxes[0].text()
            for box in boxes:
                box.button(QMessageBox.StandardButton.Ok).click()
            window.close()  # the last window: the event loop ends

    QTimer.singleShot(50, poll)
    code = main([str(png_path), "--model", str(test_model_path), "--device", "cpu"])
    assert code == 0
    assert seen == {"path": png_path, "notice": True}
    assert (paths.data_dir() / SETTINGS_FILE).is_file()
