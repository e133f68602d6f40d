"""The GUI's one job idiom (Job + JobThread), tested as napari tests its thread workers:
start the thread, wait for the signals with qtbot.waitSignal(s), check what arrived."""

from __future__ import annotations

import logging
import threading

import pytest
from PySide6.QtCore import QThread

from xraydesk.errors import Cancelled, XRayDeskError
from xraydesk.gui.jobs import Job, JobThread

WAIT_MS = 10_000


class _Counting(Job):
    """Counts to ``n``, reporting each step; stops early when cancelled."""

    cancel_errors = (Cancelled,)

    def __init__(self, n: int = 3, block: threading.Event | None = None) -> None:
        super().__init__()
        self.n = n
        self.block = block
        self.worker_thread: QThread | None = None

    def work(self) -> int:
        self.worker_thread = QThread.currentThread()
        for i in range(self.n):
            if self.block is not None:
                self.block.wait(WAIT_MS / 1000)
            if self.cancel_event.is_set():
                raise Cancelled(f"Cancelled at {i}.")
            self.progress.emit(i)
        return self.n


class _Failing(Job):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def work(self) -> object:
        raise self.error


@pytest.fixture
def start(qtbot):
    """Start jobs in JobThreads; every thread is stopped and joined after the test."""
    threads: list[JobThread] = []

    def run(job: Job) -> JobThread:
        thread = JobThread(job)
        threads.append(thread)
        thread.start()
        return thread

    yield run
    for thread in threads:
        assert thread.stop(WAIT_MS)


def test_result_then_done_in_order_and_in_the_gui_thread(qtbot, start):
    job = _Counting(3)
    seen: list[tuple[str, object, QThread]] = []
    job.progress.connect(lambda v: seen.append(("progress", v, QThread.currentThread())))
    job.succeeded.connect(lambda v: seen.append(("succeeded", v, QThread.currentThread())))
    with qtbot.waitSignals([job.succeeded, job.done], order="strict", timeout=WAIT_MS):
        start(job)
    assert [(kind, value) for kind, value, _ in seen] == [
        ("progress", 0),
        ("progress", 1),
        ("progress", 2),
        ("succeeded", 3),
    ]
    gui = QThread.currentThread()
    # the job was never moved: it lives in the GUI thread, works in the JobThread, and its
    # signals are queued back to the GUI thread
    assert job.thread() is gui
    assert job.worker_thread is not None and job.worker_thread is not gui
    assert all(thread is gui for _, _, thread in seen)


def test_an_expected_error_is_reported_as_its_message(qtbot, start):
    job = _Failing(XRayDeskError("x.png: cannot read the file"))
    succeeded: list[object] = []
    failed: list[str] = []
    job.succeeded.connect(succeeded.append)
    job.failed.connect(failed.append)
    with qtbot.waitSignals([job.failed, job.done], order="strict", timeout=WAIT_MS):
        start(job)
    assert failed == ["x.png: cannot read the file"]
    assert succeeded == []


def test_an_unexpected_error_is_reported_and_logged_never_lost(qtbot, start, caplog):
    job = _Failing(ZeroDivisionError("division by zero"))
    caplog.set_level(logging.ERROR, logger="xraydesk.gui.jobs")
    failed: list[str] = []
    job.failed.connect(failed.append)
    with qtbot.waitSignals([job.failed, job.done], order="strict", timeout=WAIT_MS):
        start(job)
    assert failed == ["Unexpected error: ZeroDivisionError: division by zero"]
    assert "_Failing failed" in caplog.text and "Traceback" in caplog.text


def test_stop_cancels_waits_and_reports_cancelled(qtbot, start):
    gate = threading.Event()
    job = _Counting(1000, block=gate)
    thread = start(job)
    with qtbot.waitSignal(job.cancelled, timeout=WAIT_MS) as cancelled:
        job.cancel()
        gate.set()
        assert thread.stop(WAIT_MS)  # cancel again (harmless) and join
    assert not thread.isRunning()
    assert cancelled.args[0].startswith("Cancelled at ")


def test_stop_before_start_is_a_no_op():
    thread = JobThread(_Counting(1))
    assert thread.stop(10) and thread.job.cancel_event.is_set()
    assert thread.objectName() == "xraydesk-_Counting"
