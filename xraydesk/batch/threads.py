"""How many CPU threads the model gets during a run, chosen by measuring, not guessing.

Why: on an idle 2-core machine the ResNet-50 runs fastest on both cores (the decode
thread's ~1 ms per image fits in the gaps), but as soon as another process keeps one core
busy, two OpenMP threads are much slower than one: each layer waits at a barrier for the
thread that is not scheduled. Measured on the 2-core target with a training run beside
it: 9.5 images/s on two threads, 18-23 on one. So the run tries each candidate on whole
batches, keeps the one with the best end-to-end time per image, and tries the others
again now and then, since the machine's load changes while a long run goes on.
"""

from __future__ import annotations

import os
import statistics
from collections import deque

import torch


def thread_candidates() -> list[int]:
    """All cores, and all but one (leaving one to decoding and to everyone else)."""
    cores = torch.get_num_threads() or os.cpu_count() or 1
    return [cores] if cores <= 1 else [cores, cores - 1]


class ThreadTuner:
    """Pick a thread count per batch; ``record`` the seconds per image it achieved."""

    def __init__(
        self, candidates: list[int], explore_every: int = 30, samples_needed: int = 2
    ) -> None:
        self.candidates = list(dict.fromkeys(candidates))
        self.explore_every = explore_every
        self.samples_needed = samples_needed
        self._samples: dict[int, deque[float]] = {c: deque(maxlen=5) for c in self.candidates}
        self._batches = 0
        self._explore_next = 0

    def choose(self) -> int:
        """The thread count for the next batch."""
        self._batches += 1
        if len(self.candidates) == 1:
            return self.candidates[0]
        fewest = min(self.candidates, key=lambda c: len(self._samples[c]))
        if len(self._samples[fewest]) < self.samples_needed:  # first, each a few times, in turn
            return fewest
        if self._batches % self.explore_every == 0:  # then, now and then, another one
            self._explore_next = (self._explore_next + 1) % len(self.candidates)
            return self.candidates[self._explore_next]
        return self.best

    def record(self, threads: int, seconds_per_image: float) -> None:
        if threads in self._samples and seconds_per_image > 0:
            self._samples[threads].append(seconds_per_image)

    @property
    def best(self) -> int:
        measured = {c: s for c, s in self._samples.items() if s}
        if not measured:
            return self.candidates[0]
        return min(measured, key=lambda c: statistics.median(measured[c]))
