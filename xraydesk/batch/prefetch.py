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


def ordered_map(
    fn: Callable[[In], Out],
    items: Iterable[In],
    workers: int,
    depth: int,
    cancel: threading.Event | None = None,
) -> Iterator[Out]:
    """Yield ``fn(item)`` for each item, in order, computed up to ``depth`` items ahead.

    Stops early (without raising) once ``cancel`` is set. Exceptions from ``fn`` are
    re-raised here, in the consumer; ``fn`` should turn expected failures into values.
    """
    cancel = cancel if cancel is not None else threading.Event()
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
