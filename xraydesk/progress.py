"""The one progress record and the one rate meter of every long task (no Qt here).

Engines (batch, trainer, validation) report ``Progress`` records through a plain callback;
the GUI turns them into signals and the CLI's ``TerminalBar`` draws them. An engine that
has more to say (a batch's reused rows, a training epoch's loss) extends the record with
its own fields, so every front door can show any task's count, rate and time left.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """How far a task has come: ``done`` of ``total`` units of ``phase``, at ``rate`` units
    per second, ``eta`` seconds left (None while unknown), ``elapsed`` since it started."""

    phase: str = ""
    done: int = 0
    total: int | None = None  # None (or 0) while unknown
    message: str = ""
    elapsed: float = 0.0
    rate: float | None = None
    eta: float | None = None

    @property
    def fraction(self) -> float | None:
        """Share done in [0, 1]; None while the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


class Rate:
    """Units per second over a sliding window: reacts to a slower part of the work (large
    DICOMs after small PNGs, a slower epoch) within seconds, yet does not jump at every
    batch. ``restart`` forgets the window, so a pause (evaluation between epochs) does not
    count as slow work."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._start = time.monotonic()
        self._count = 0
        self._samples: deque[tuple[float, int]] = deque(maxlen=256)
        self._samples.append((self._start, 0))

    def update(self, done: int) -> float | None:
        """Record that ``done`` units are finished in all; returns the rate."""
        now = time.monotonic()
        self._count = done
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        return self.rate

    def add(self, units: int) -> float | None:
        """Record ``units`` more finished units; returns the rate."""
        return self.update(self._count + max(0, units))

    def restart(self) -> None:
        """Measure from now on (the count is kept)."""
        self._samples.clear()
        self._samples.append((time.monotonic(), self._count))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    @property
    def rate(self) -> float | None:
        """Units per second over the window; None before anything was measured."""
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None

    def eta(self, done: int, total: int | None) -> float | None:
        """Seconds left at the current rate; None while the total or the rate is unknown."""
        rate = self.rate
        if total is None or not rate:
            return None
        return max(0.0, (total - done) / rate)
