"""The GUI's one way to run work off the GUI thread: a ``Job``.

A ``Job`` is a QObject that stays in the GUI thread (nothing calls ``moveToThread``). Its
``run`` is called from a worker thread, so its signals are emitted there and Qt queues
them to their receivers in the GUI thread. ``done`` is always the last signal; a cancel
(``cancel_errors``, normally ``xraydesk.errors.Cancelled``), a user-facing error and a
bug each have their own signal, and a bug is logged with its traceback, never lost with
a dead thread.

Two ways to give a job a thread, one idiom: ``JobThread`` (one long job: a batch, a
training run, the start-up imports; no event loop, so waiting for it never deadlocks on
a queued quit) and ``start_job`` (many short jobs sharing a ``QThreadPool``: model
loads, image analysis). Cancel sets the job's ``threading.Event``, which the engines
poll; a job superseded by a newer one (the image analysis) is cancelled the same way,
and its late signals are dropped by whoever started it.
"""

from __future__ import annotations

import logging
import threading
import traceback

from PySide6.QtCore import QObject, QThread, QThreadPool, Signal

from xraydesk.errors import XRayDeskError

log = logging.getLogger(__name__)


class Job(QObject):
    """One piece of work for a worker thread; ``done`` is always the last signal."""

    progress = Signal(object)  # the engine's progress record (xraydesk.progress.Progress)
    succeeded = Signal(object)  # what work() returned
    failed = Signal(str)  # a sentence for the user
    cancelled = Signal(str)
    done = Signal()

    # exceptions that mean "the user cancelled" (reported through ``cancelled``)
    # (``(Cancelled,)`` for engines that raise it; a job that must not treat a cancel as
    # quiet leaves it empty and the cancel reaches ``failed``)
    cancel_errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        """Ask the engine to stop (thread-safe; returns at once)."""
        self.cancel_event.set()

    def work(self) -> object:
        """The job itself, run in the worker thread."""
        raise NotImplementedError

    def unexpected(self, exc: Exception) -> str:
        """The sentence for a bug (its traceback goes to the log)."""
        return f"Unexpected error: {type(exc).__name__}: {exc}"

    def run(self) -> None:
        try:
            self.succeeded.emit(self.work())
        except self.cancel_errors as exc:
            self.cancelled.emit(str(exc))
        except XRayDeskError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # never let a worker die silently
            log.error("%s failed:\n%s", type(self).__name__, traceback.format_exc())
            self.failed.emit(self.unexpected(exc))
        finally:
            self.done.emit()


class JobThread(QThread):
    """Runs one job in its own thread (no event loop: waiting for it never deadlocks)."""

    def __init__(self, job: Job, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.setObjectName(f"xraydesk-{type(job).__name__}")

    def run(self) -> None:
        self.job.run()

    def stop(self, wait_ms: int = 60_000) -> bool:
        """Cancel and wait for the thread; True when it has ended."""
        self.job.cancel()
        return self.wait(wait_ms) if self.isRunning() else True


def start_job(job: Job, pool: QThreadPool) -> None:
    """Run ``job`` on one of ``pool``'s threads (queued while they are all busy). The pool
    keeps the job alive until it has run; ``pool.waitForDone`` waits for it."""
    pool.start(job.run)
