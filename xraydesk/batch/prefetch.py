"""Run a function over a stream in worker threads, results in input order, bounded ahead.

Why threads and not DataLoader worker processes: decoding and preprocessing spend most
of their time in Pillow, pydicom's codecs, numpy and torch kernels, all of which release
the GIL, so threads overlap with inference as well as processes do; threads start
instantly, need no fork (unsafe inside a Qt application) and no pickling of tensors
between processes. Measured on the 2-core target (tests/benchmarks/bench_batch.py).

Why bounded: at most ``depth`` items are submitted ahead of the consumer, so memory
depends on ``depth``, never on the length of the stream.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from xraydesk.model.device import use_one_torch_thread_here

In = TypeVar("In")
Out = TypeVar("Out")

POLL_S = 0.05  # how often a waiting consumer looks at the cancel flag


class Slots:
    """How many workers may compute at once, changeable at any time (0 pauses them).

    The batch engine closes the slots while the model runs on every core and opens them
    between batches, so decoding never preempts one of the model's OpenMP threads (the
    other would wait for it at the next barrier, idle).
    """

    def __init__(self, limit: int) -> None:
        self._cond = threading.Condition()
        self._limit = limit
        self._active = 0

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, limit: int) -> None:
        with self._cond:
            self._limit = limit
            self._cond.notify_all()

    def acquire(self, cancel: threading.Event) -> bool:
        with self._cond:
            while self._active >= self._limit:
                if cancel.is_set():
                    return False
                self._cond.wait(POLL_S)
            self._active += 1
            return True

    def release(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()


def ordered_map(
    fn: Callable[[In], Out],
    items: Iterable[In],
    workers: int,
    depth: int,
    cancel: threading.Event | None = None,
    slots: Slots | None = None,
) -> Iterator[Out]:
    """Yield ``fn(item)`` for each item, in order, computed up to ``depth`` items ahead.

    Stops early (without raising) once ``cancel`` is set. Exceptions from ``fn`` are
    re-raised here, in the consumer; ``fn`` should turn expected failures into values.
    ``slots`` limits how many items are computed at the same moment.
    """
    cancel = cancel if cancel is not None else threading.Event()
    if slots is not None:
        fn = _throttled(fn, slots, cancel)
    source = iter(items)
    window: deque[Future[Out]] = deque()
    exhausted = False
    pool = ThreadPoolExecutor(
        max_workers=max(1, workers),
        thread_name_prefix="xraydesk-decode",
        initializer=use_one_torch_thread_here,
    )
    try:
        while True:
            while not exhausted and len(window) < depth and not cancel.is_set():
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                window.append(pool.submit(fn, item))
            if not window or cancel.is_set():
                return
            head = window[0]
            while True:
                try:
                    result = head.result(timeout=POLL_S)
                    break
                except FutureTimeout:
                    if cancel.is_set():
                        return
            window.popleft()
            yield result
    finally:
        for future in window:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _throttled(
    fn: Callable[[In], Out], slots: Slots, cancel: threading.Event
) -> Callable[[In], Out]:
    def run(item: In) -> Out:
        if not slots.acquire(cancel):
            return fn(item)  # cancelled: fn returns at once
        try:
            return fn(item)
        finally:
            slots.release()

    return run
