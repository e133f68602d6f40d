"""How far a run has come, how fast it goes and how long it still needs."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchProgress:
    done: int  # rows finished (classified + reused + failed)
    total: int | None  # images found; None while the folder is still being counted
    classified: int
    reused: int
    failed: int
    elapsed: float  # seconds since the run started
    rate: float  # rows per second over the last few seconds (0 before the first rows)
    eta: float | None  # seconds left; None while unknown

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


class WindowedRate:
    """Rows per second over a sliding window: reacts to a slower part of a folder (large
    DICOMs after small PNGs) within seconds, yet does not jump at every batch."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._start = time.monotonic()
        self._samples: deque[tuple[float, int]] = deque(maxlen=256)
        self._samples.append((self._start, 0))

    def update(self, done: int) -> None:
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    @property
    def rate(self) -> float:
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def progress(
        self, done: int, total: int | None, classified: int, reused: int, failed: int
    ) -> BatchProgress:
        rate = self.rate
        eta = None
        if total is not None and rate > 0:
            eta = max(0.0, (total - done) / rate)
        return BatchProgress(done, total, classified, reused, failed, self.elapsed, rate, eta)
