"""The long jobs of the batch panel and the fine-tuning wizard.

They follow the GUI's one worker idiom, ``Job`` with ``JobThread`` (xraydesk.gui.worker,
re-exported here): a batch stops within a second of a cancel and keeps its rows, a
training run stops within one batch and keeps its checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal

from xraydesk.batch.progress import BatchProgress
from xraydesk.batch.rows import ResultRow
from xraydesk.batch.run import BatchOptions, BatchRun, RunSummary
from xraydesk.classifier import Classifier
from xraydesk.errors import Cancelled, XRayDeskError
from xraydesk.gui.worker import Job, JobThread
from xraydesk.imaging import load_xray
from xraydesk.imaging.resample import resize
from xraydesk.trainer import (
    DatasetReport,
    TrainConfig,
    check_data,
    train_model,
)
from xraydesk.trainer.class_sources import class_differences

log = logging.getLogger(__name__)

__all__ = [
    "BatchJob",
    "CheckJob",
    "CheckOutcome",
    "ClassifierProvider",
    "Job",
    "JobThread",
    "TrainJob",
]

ClassifierProvider = Callable[[], Classifier]  # may take a second (loads the model)

EMIT_EVERY_S = 0.1  # batch rows reach the GUI in chunks at most ten times a second
THUMBNAILS_PER_CLASS = 4
THUMBNAIL_SIZE = 88


# ============================================================================ batch
class BatchJob(Job):
    """Classifies a folder with BatchRun; rows reach the GUI in chunks."""

    rows_ready = Signal(object)  # list[ResultRow]
    started_run = Signal(object)  # classes: list[(id, display name)], once the model is loaded

    def __init__(self, folder: Path, provider: ClassifierProvider, options: BatchOptions) -> None:
        super().__init__()
        self.folder = folder
        self.provider = provider
        self.options = options
        # set in the worker before ``done``; None when the run never started
        self.summary: RunSummary | None = None
        self.skipped: list[tuple[Path, str]] = []  # files passed over, with the reason
        # the run's id in the results database, set before its first rows are sent (the
        # table then reads them from there rather than holding them)
        self.run_id: int | None = None

    def work(self) -> RunSummary | None:
        classifier = self.provider()
        if self.cancel_event.is_set():
            return None
        self.started_run.emit([(c.id, c.name) for c in classifier.card.classes])
        reported = [0]  # rows the engine has counted as done (it reports before yielding)

        def on_progress(progress: BatchProgress) -> None:
            reported[0] = progress.done
            self.progress.emit(progress)

        batch = BatchRun(
            [self.folder],
            classifier,
            self.options,
            cancel=self.cancel_event,
            on_progress=on_progress,
        )
        buffer: list[ResultRow] = []
        sent, last = 0, time.monotonic()
        try:
            for row in batch.rows():
                self.run_id = batch.run_id
                buffer.append(row)
                # send when a reported group is complete (the table keeps up with the
                # progress bar) or, within a group, at most ten times a second
                caught_up = sent + len(buffer) >= reported[0]
                if caught_up or time.monotonic() - last >= EMIT_EVERY_S:
                    self.rows_ready.emit(buffer)
                    sent += len(buffer)
                    buffer, last = [], time.monotonic()
        finally:
            self.summary = batch.summary
            self.skipped = list(batch.stats.skipped)
            if buffer:
                self.rows_ready.emit(buffer)
        return self.summary


# ============================================================================ fine-tuning
@dataclass(frozen=True)
class CheckOutcome:
    report: DatasetReport
    thumbnails: dict[str, list[np.ndarray]]  # class id -> uint8 (S, S) images
    # where the classes differ in format, bit depth or size (shortcut risk), in words
    class_warnings: tuple[str, ...] = ()


def thumbnail(path: str | Path) -> np.ndarray:
    """A small 8-bit square preview of a radiograph (decoded here, not in the GUI thread)."""
    small = resize(load_xray(path).render(), THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    return (np.clip(small, 0, 1) * 255 + 0.5).astype(np.uint8)


class CheckJob(Job):
    """Checks training data and makes a few thumbnails per class."""

    cancel_errors = (Cancelled,)

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.config = config

    def work(self) -> CheckOutcome:
        report = check_data(self.config, self.progress.emit, self.cancel_event)
        if self.cancel_event.is_set():
            raise Cancelled("Checking was cancelled.")
        thumbs: dict[str, list[np.ndarray]] = {c: [] for c in report.classes}
        for sample in report.samples:
            previews = thumbs.get(sample.label)
            if previews is None or len(previews) >= THUMBNAILS_PER_CLASS:
                continue
            try:
                previews.append(thumbnail(sample.path))
            except XRayDeskError:
                continue
        warnings = class_differences(report.samples, report.class_names) if report.ok else []
        return CheckOutcome(report, thumbs, tuple(warnings))


class TrainJob(Job):
    """Trains (or resumes, or finishes early) one model."""

    cancel_errors = (Cancelled,)

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
            self.progress.emit,
            self.cancel_event,
            resume=self.resume or self.finish_early,
            finish_early=self.finish_early,
        )
