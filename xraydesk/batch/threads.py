"""How the two halves of a run share the CPU, chosen by measuring, not guessing.

A schedule says how many CPU threads the model gets and whether decoding waits for the
gaps between batches ("gated") or runs alongside inference, on the cores the model
leaves (at least one).

Why measure: on an idle 2-core machine the ResNet-50 runs fastest on both cores with one
decode thread alongside. As soon as another process keeps one core busy, two OpenMP
threads are much slower than one (measured on the 2-core target beside a training run:
9.5 images/s on two threads, 18-23 on one): each layer waits at a barrier for the thread
that is not scheduled. So the run tries each schedule on whole batches, keeps the one
with the best end-to-end time per image, and tries the others again now and then, since
the machine's load changes while a long run goes on.

Gated decoding (the model's threads never preempted by a decoder) was measured on the
idle target too, with the torch network: equal at 224 px (40.9 against 41.0 images/s) and
slower at 1024 px (23.7 against 25.2), so a torch run does not try it by default.

An exported runtime (OpenVINO, ONNX Runtime) runs on threads of its own over every core,
whatever torch's count says, so for it the thread counts above are one schedule, not two;
what differs is whether decoding waits. Measured on the AMD EPYC Zen 4 (2 cores, idle but
for a test run), chest-3class at 160 px on OpenVINO bf16, 1,000 kermany films a run,
five interleaved pairs: gated 69.6-80.0 images/s against 67.4-77.5 alongside, gated
ahead in four of the five (median +7 %). Both are tried, gated first, and the tuner keeps
what the machine's load favours.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from xraydesk.optional import has_torch

C = TypeVar("C", bound=Hashable)


@dataclass(frozen=True)
class Schedule:
    threads: int  # the model's intra-op threads
    gated: bool  # decoding waits while the model runs

    def __str__(self) -> str:
        how = "decoding between batches" if self.gated else "decoding alongside"
        return f"{self.threads} thread{'s' if self.threads > 1 else ''}, {how}"


def cpu_cores() -> int:
    return max(1, torch_threads() or usable_cores())


def runtime_cores(backend: object) -> int:
    """The cores an exported runtime's own threads run on: its thread count where one was
    set, else every core this process may use.

    Why not ``cpu_cores``: that is torch's OpenMP team, which ``OMP_NUM_THREADS`` sets (the
    README asks for 1 beside a training); OpenVINO and ONNX Runtime keep their own threads
    over every core. Counting one core there left a run one decode thread and a single
    schedule, decoding alongside the runtime's two threads, never the gated one this CPU
    favours (measured: bench_batch under ``OMP_NUM_THREADS=1``, 0.72-0.74 of plain
    OpenVINO bf16)."""
    threads = getattr(backend, "threads", None)
    if threads is None and hasattr(backend, "fast"):  # a rechecked runtime: its fast half's
        threads = getattr(backend.fast, "threads", None)
    cores = usable_cores()
    return max(1, min(int(threads), cores)) if threads else cores


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def torch_threads(count: int | None = None) -> int:
    """torch's intra-op thread count for the calling thread, first set to ``count`` when
    given; where torch is not loaded (an exported runtime, with its own threads, runs the
    model; the light build has no torch) the cores this process may use, and torch is not
    imported just to ask (2.5 s)."""
    if not has_torch() or "torch" not in sys.modules:
        return usable_cores()
    import torch

    if count is not None:
        torch.set_num_threads(count)
    return torch.get_num_threads()


def schedule_candidates(cores: int | None = None, exported: bool = False) -> list[Schedule]:
    """For the torch network: every core, and one core fewer, with decoding alongside. For
    an exported runtime (its own threads on every core): decoding between batches, and
    alongside on one core."""
    cores = cores or cpu_cores()
    if cores <= 1:
        return [Schedule(1, gated=False)]
    if exported:
        return [Schedule(cores, gated=True), Schedule(cores, gated=False)]
    return [Schedule(cores, gated=False), Schedule(cores - 1, gated=False)]


class Tuner(Generic[C]):
    """Pick a candidate per batch; ``record`` the seconds per image it achieved."""

    def __init__(self, candidates: list[C], explore_every: int = 40, samples_needed: int = 2):
        self.candidates = list(dict.fromkeys(candidates))
        self.explore_every = explore_every
        self.samples_needed = samples_needed
        self._samples: dict[C, deque[float]] = {c: deque(maxlen=5) for c in self.candidates}
        self._batches = 0
        self._explore_next = 0

    def choose(self) -> C:
        """The candidate for the next batch."""
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

    def record(self, candidate: C, seconds_per_image: float) -> None:
        if candidate in self._samples and seconds_per_image > 0:
            self._samples[candidate].append(seconds_per_image)

    @property
    def best(self) -> C:
        measured = {c: s for c, s in self._samples.items() if s}
        if not measured:
            return self.candidates[0]
        return min(measured, key=lambda c: statistics.median(measured[c]))
