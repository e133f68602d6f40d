"""Progress reports and cancellation, shared by the engine and both front doors.

The engine calls one callback with ``TrainProgress`` records; the CLI draws a progress bar
from them and the wizard turns them into Qt signals. Nothing here knows about either.
Cancellation is a ``threading.Event`` the engine polls between batches, so it stops
within one batch (a second or two on a CPU).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from xraydesk.errors import Cancelled, XRayDeskError
from xraydesk.progress import Progress


class TrainingStage(StrEnum):
    """A training run's phase (``TrainProgress.phase``), in the order a run goes through."""

    CHECKING = "checking"  # reading and checking the data
    SPLITTING = "splitting"  # the patient-grouped split
    FEATURES = "features"  # quick mode: the base model's features
    HEAD = "head"  # quick mode: fitting the head
    TRAINING = "training"  # full mode: the epochs
    EVALUATING = "evaluating"
    SAVING = "saving"
    DONE = "done"


PHASES = tuple(stage.value for stage in TrainingStage)


class TrainingError(XRayDeskError):
    """Training cannot start or cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class TrainProgress(Progress):
    """The shared ``Progress`` (``done`` of ``total`` files, images or steps of ``phase``;
    ``rate`` in images per second; ``eta`` for the whole run) plus the epoch's figures."""

    epoch: int = 0  # 1-based epoch being trained (0 outside training)
    epochs: int = 0
    step: int = 0  # 1-based step within the epoch
    steps: int = 0
    loss: float | None = None  # running training loss of this epoch
    acc: float | None = None  # running training accuracy of this epoch
    record: dict[str, Any] | None = None  # set once per finished epoch (the history row)


ProgressCallback = Callable[[TrainProgress], None]


@dataclass
class Reporter:
    """Stamps elapsed time on every report and forwards it; polls for cancellation."""

    callback: ProgressCallback | None = None
    cancel_event: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)

    def emit(self, phase: TrainingStage, **fields: Any) -> None:
        if self.callback is not None:
            elapsed = time.perf_counter() - self.started
            self.callback(replace(TrainProgress(phase=phase), elapsed=elapsed, **fields))

    @property
    def cancelled(self) -> bool:
        return self.cancel_event is not None and self.cancel_event.is_set()

    def check_cancel(self, message: str = "Training was cancelled.") -> None:
        if self.cancelled:
            raise Cancelled(message)
