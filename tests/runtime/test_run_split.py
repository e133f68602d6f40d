"""``run_split``: a batch cut into slices that the streams' threads take as they become
free, joined in input order, so a stream slowed by decoding on its core does fewer."""

from __future__ import annotations

import threading
import time

import numpy as np

from xraydesk.runtime.backend import Outputs
from xraydesk.runtime.openvino_backend import run_split


def _rows(batch: np.ndarray) -> Outputs:
    """Each row's index back as its logit: the join's order is visible."""
    values = batch.reshape(len(batch), -1)[:, :1].astype(np.float32)
    return Outputs(values, values.copy(), None)


def test_slices_are_joined_in_input_order():
    batch = np.arange(32, dtype=np.float32).reshape(32, 1, 1, 1)
    seen: list[int] = []
    lock = threading.Lock()

    def part(rows: np.ndarray, keep: bool) -> Outputs:
        with lock:
            seen.append(len(rows))
        return _rows(rows)

    out = run_split(part, batch, parts=2, keep=False, per_part=2)
    np.testing.assert_array_equal(out.logits[:, 0], np.arange(32))
    assert sorted(seen) == [8, 8, 8, 8]  # four slices for two threads
    whole = run_split(part, batch[:1], parts=2, keep=False, per_part=2)
    assert whole.logits.shape == (1, 1)  # one row: no split


def test_a_slow_stream_leaves_its_share_to_the_free_one():
    """The first slice is slow (its core busy decoding): the other thread takes the rest,
    instead of the batch waiting for the slow thread's second half."""
    batch = np.arange(32, dtype=np.float32).reshape(32, 1, 1, 1)
    by_thread: dict[str, list[int]] = {}
    lock = threading.Lock()

    def part(rows: np.ndarray, keep: bool) -> Outputs:
        if rows[0, 0, 0, 0] == 0:
            time.sleep(0.5)
        with lock:
            by_thread.setdefault(threading.current_thread().name, []).append(int(rows[0, 0, 0, 0]))
        return _rows(rows)

    out = run_split(part, batch, parts=2, keep=False, per_part=2)
    np.testing.assert_array_equal(out.logits[:, 0], np.arange(32))
    shares = sorted(len(firsts) for firsts in by_thread.values())
    assert shares == [1, 3]
