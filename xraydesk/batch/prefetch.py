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

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

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
    pool = DaemonPool(max(1, workers), "xraydesk-decode", use_one_torch_thread_here)
    try:
        while True:
            while not exhausted and len(window) < depth and not cancel.is_set():
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                window.append(pool.submit(fn, item))
            if not window:
                pool.ended = True
                return
            if cancel.is_set():
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
        pool.shutdown()


class DaemonPool:
    """``ThreadPoolExecutor.submit`` on daemon threads. A worker stuck in a read that never
    returns (a network file whose server went away) must not hold up a cancelled run nor
    the process's exit, and ``ThreadPoolExecutor`` joins its threads in both places
    (``shutdown(wait=True)`` and at interpreter exit). ``shutdown`` waits only when the
    stream ended normally (``ended``: every submitted item is done, so it costs nothing);
    after a cancel, Ctrl-C or an error the stuck thread is left behind as a daemon."""

    def __init__(self, workers: int, name: str, initializer: Callable[[], None]) -> None:
        self.ended = False
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[Any], Any], Any] | None]
        self._tasks = queue.SimpleQueue()
        self._initializer = initializer
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{k}", daemon=True)
            for k in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[In], Out], item: In) -> Future[Out]:
        future: Future[Out] = Future()
        self._tasks.put((future, fn, item))
        return future

    def shutdown(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        if self.ended:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        self._initializer()
        while (task := self._tasks.get()) is not None:
            future, fn, item = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(item)
            except BaseException as exc:  # re-raised in the consumer, as the executor does
                future.set_exception(exc)
            else:
                future.set_result(result)


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
