"""Data checking and training off the GUI thread.

Each job is a QObject moved to its own QThread; the engine's progress callback emits a
signal (queued to the GUI thread), so the app stays responsive while a model trains.
Cancel sets the engine's threading.Event: it stops within one batch and keeps its
checkpoint.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PySide6.QtCore import QObject, QThread, Signal

from xraydesk.errors import XRayDeskError
from xraydesk.imaging import load_xray
from xraydesk.trainer import (
    DatasetReport,
    TrainConfig,
    TrainingCancelled,
    TrainProgress,
    check_data,
    train_model,
)

log = logging.getLogger(__name__)

THUMBNAILS_PER_CLASS = 4
THUMBNAIL_SIZE = 88


@dataclass(frozen=True)
class CheckOutcome:
    report: DatasetReport
    thumbnails: dict[str, list[np.ndarray]]  # class id -> uint8 (S, S) images


def thumbnail(path) -> np.ndarray:
    """A small 8-bit square preview of a radiograph (decoded here, not in the GUI thread)."""
    unit = torch.as_tensor(load_xray(path).render())
    small = F.interpolate(
        unit[None, None], size=(THUMBNAIL_SIZE, THUMBNAIL_SIZE), mode="bilinear", antialias=True
    )[0, 0]
    return (small.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


class _Job(QObject):
    progress = Signal(object)  # TrainProgress
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)
    done = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def _report(self, p: TrainProgress) -> None:
        self.progress.emit(p)

    def run(self) -> None:
        try:
            self.succeeded.emit(self.work())
        except TrainingCancelled as exc:
            self.cancelled.emit(str(exc))
        except XRayDeskError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # never let a worker die silently
            log.error("training job failed:\n%s", traceback.format_exc())
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self.done.emit()

    def work(self) -> object:
        raise NotImplementedError


class CheckJob(_Job):
    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.config = config

    def work(self) -> CheckOutcome:
        report = check_data(self.config, self._report, self.cancel_event)
        if self.cancel_event.is_set():
            raise TrainingCancelled("Checking was cancelled.")
        thumbs: dict[str, list[np.ndarray]] = {c: [] for c in report.classes}
        for sample in report.samples:
            previews = thumbs.get(sample.label)
            if previews is None or len(previews) >= THUMBNAILS_PER_CLASS:
                continue
            try:
                previews.append(thumbnail(sample.path))
            except XRayDeskError:
                continue
        return CheckOutcome(report, thumbs)


class TrainJob(_Job):
    def __init__(
        self, config: TrainConfig, resume: bool = False, finish_early: bool = False
    ) -> None:
        super().__init__()
        self.config = config
        self.resume = resume
        self.finish_early = finish_early

    def work(self) -> object:
        return train_model(
            self.config,
            self._report,
            self.cancel_event,
            resume=self.resume or self.finish_early,
            finish_early=self.finish_early,
        )


class JobRunner(QThread):
    """Runs one job in its own thread (``run`` calls the engine directly; no event loop,
    so waiting for the thread can never deadlock on a queued quit)."""

    def __init__(self, job: _Job, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.setObjectName(f"xraydesk-{type(job).__name__}")

    def run(self) -> None:
        self.job.run()

    def is_running(self) -> bool:
        return self.isRunning()

    def stop(self, wait_ms: int = 60_000) -> bool:
        """Cancel and wait for the thread; True when it has ended."""
        self.job.cancel()
        return self.wait(wait_ms) if self.isRunning() else True
