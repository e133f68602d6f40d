"""A campaign training's compute threads: every core while no one else wants them, one
as soon as someone does.

Why: the campaign runs beside the session's own work on a 2-core machine, so it trains
with one OpenMP thread (``campaign.run_job``): with two, a thread whose core is taken by
other work is descheduled and its twin waits for it at every parallel region (a 64 px
forward pass took 2.4 s against 0.064 s with one thread, Intel Xeon family 6 model 207,
loaded). But most of a session's minutes leave the second core idle, and one thread
trains at about 20 images/s at 128 px (AMD EPYC Zen 4, family 25 model 17). So the
training asks, every ``interval`` seconds from its own thread, how many cores the rest
of the machine used since the last look (``/proc/stat``'s busy time less this process's
own CPU time): under ``idle_below`` cores for ``settle`` looks in a row, it takes every
core; at or above it, one thread at once. A wrong guess costs at most one interval, and
it costs the other work too when that work runs two OpenMP threads of its own (a fresh
two-thread torch loop ran 1 image/s beside the two-thread training, 27 alone): hence a
short interval to give the core back and a longer wait (``settle`` looks) to take it.

``torch.set_num_threads`` sets the calling thread's OpenMP team size, so ``adjust`` only
acts when called from the thread that created the controller (the training loop's: the
progress callback is called there).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

STAT = Path("/proc/stat")
BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq (not idle, iowait, steal)


def machine_busy_seconds(stat: Path = STAT) -> float | None:
    """CPU seconds every core spent busy since boot; None where ``/proc/stat`` is not."""
    try:
        with stat.open(encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return sum(int(fields[1 + i]) for i in BUSY_FIELDS if 1 + i < len(fields)) / ticks


def own_cpu_seconds() -> float:
    """This process's CPU seconds, every thread of it."""
    t = os.times()
    return t.user + t.system


class IdleCores:
    """How many compute threads the training should run now (see the module's docstring)."""

    def __init__(
        self,
        cores: int | None = None,
        interval: float = 5.0,
        idle_below: float = 0.3,
        settle: int = 3,
        busy: Callable[[], float | None] = machine_busy_seconds,
        own: Callable[[], float] = own_cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
        set_threads: Callable[[int], None] | None = None,
    ) -> None:
        self.cores = max(1, cores or os.cpu_count() or 1)
        self.interval = interval
        self.idle_below = idle_below
        self.settle = settle
        self._busy, self._own, self._clock = busy, own, clock
        self._set = set_threads or _torch_threads
        self._thread = threading.get_ident()
        self.threads = 1
        self.others: float | None = None  # cores the rest of the machine used, last look
        self._idle_looks = 0
        self._last = self._reading()

    def _reading(self) -> tuple[float, float | None, float]:
        return self._clock(), self._busy(), self._own()

    def adjust(self) -> int:
        """Look again if ``interval`` has passed, set the thread count; the count now."""
        if threading.get_ident() != self._thread or self.cores == 1:
            return self.threads
        elapsed = self._clock() - self._last[0]
        if elapsed < self.interval:  # called every step: /proc/stat only once an interval
            return self.threads
        before = self._last
        now = self._last = self._reading()
        elapsed = now[0] - before[0]
        if now[1] is None or before[1] is None:
            return self.threads  # no /proc/stat: stay at one thread
        others = max(0.0, (now[1] - before[1]) - (now[2] - before[2])) / elapsed
        self.others = others
        if others >= self.idle_below:
            self._idle_looks = 0
            wanted = 1
        else:
            self._idle_looks += 1
            wanted = self.cores if self._idle_looks >= self.settle else self.threads
        if wanted != self.threads:
            self._set(wanted)
            self.threads = wanted
        return self.threads


def _torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)
