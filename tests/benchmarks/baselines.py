"""The yardsticks several benchmarks compare against, built one way.

Plain OpenVINO bf16 in throughput mode is issue 28's baseline: the chosen faithful runtime
must reach 0.9 of it (bench_runtime.py) and the whole batch pipeline 0.75 of it
(bench_batch.py). It is timed only: its numbers are not faithful enough for chest-3class,
which is why the app does not run it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xraydesk.runtime import openvino_backend


def plain_bf16(
    graph: Path, per_stream: int = openvino_backend.CHUNKS_PER_STREAM
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The graph on plain OpenVINO bf16, throughput mode, returning logits; None where
    OpenVINO or native bf16 is missing, or fp32 was asked for (``XRAYDESK_PRECISION``).
    ``per_stream``: slices of a batch per stream (1: one half-batch per stream on 2 cores,
    often the fastest with nothing beside the model)."""
    if not (openvino_backend.installed() and openvino_backend.cpu_has_bf16()):
        return None
    if os.environ.get("XRAYDESK_PRECISION") == "fp32":
        return None
    backend = openvino_backend.OpenVinoBackend(
        graph, "bf16", mode="throughput", per_stream=per_stream
    )
    return lambda batch: backend.run(batch, activations=False).logits


def images_per_s(run: Callable[[np.ndarray], object], batch: np.ndarray, seconds: float) -> float:
    """``run`` on ``batch`` over and over for ``seconds`` (after one warm-up call)."""
    run(batch)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count == 0:
        run(batch)
        count += len(batch)
    return count / (time.perf_counter() - start)
