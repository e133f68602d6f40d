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
from typing import Any

from xraydesk.errors import Cancelled, XRayDeskError

PHASES = ("checking", "splitting", "features", "head", "training", "evaluating", "saving", "done")


class TrainingError(XRayDeskError):
    """Training cannot start or cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class TrainProgress:
    phase: str
    message: str = ""
    done: int = 0  # units of this phase done (files, images or steps)
    total: int = 0
    epoch: int = 0  # 1-based epoch being trained (0 outside training)
    epochs: int = 0
    step: int = 0  # 1-based step within the epoch
    steps: int = 0
    loss: float | None = None  # running training loss of this epoch
    acc: float | None = None  # running training accuracy of this epoch
    images_per_s: float | None = None
    eta_s: float | None = None  # whole run, None while unknown
    elapsed_s: float = 0.0
    record: dict[str, Any] | None = None  # set once per finished epoch (the history row)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


ProgressCallback = Callable[[TrainProgress], None]


@dataclass
class Reporter:
    """Stamps elapsed time on every report and forwards it; polls for cancellation."""

    callback: ProgressCallback | None = None
    cancel_event: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)

    def emit(self, phase: str, **fields: Any) -> None:
        if self.callback is not None:
            elapsed = time.perf_counter() - self.started
            self.callback(replace(TrainProgress(phase=phase), elapsed_s=elapsed, **fields))

    @property
    def cancelled(self) -> bool:
        return self.cancel_event is not None and self.cancel_event.is_set()

    def check_cancel(self, message: str = "Training was cancelled.") -> None:
        if self.cancelled:
            raise Cancelled(message)


class SmoothedRate:
    """Images per second, smoothed so the display does not jitter."""

    def __init__(self, smoothing: float = 0.3) -> None:
        self.smoothing = smoothing
        self.rate: float | None = None
        self._last = time.perf_counter()

    def restart(self) -> None:
        self._last = time.perf_counter()

    def update(self, images: int) -> float | None:
        now = time.perf_counter()
        seconds, self._last = now - self._last, now
        if seconds <= 0 or images <= 0:
            return self.rate
        current = images / seconds
        self.rate = (
            current
            if self.rate is None
            else self.smoothing * current + (1 - self.smoothing) * self.rate
        )
        return self.rate
