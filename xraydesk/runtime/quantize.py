"""int8: a statically quantized copy of an exported graph, for measuring only.

Static int8 needs calibration radiographs (the activations' ranges), which the app does
not ship, and measured it moves probabilities past the faithfulness bar (see
``tests/benchmarks/bench_runtime.py``), so ``select`` never chooses it. The benchmark
calibrates on the model's training split and runs the result in ONNX Runtime and in
OpenVINO (which reads the same QDQ graph as int8).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def quantize_int8(graph: Path, calibration: Iterable[np.ndarray], target: Path) -> Path:
    """Write ``graph`` quantized to int8 (QDQ, per-channel weights) to ``target``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {"input": np.asarray(batch, np.float32)}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static advises pre-processing on the root logger
    try:
        quantize_static(
            str(graph),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        root.setLevel(level)
    return target
