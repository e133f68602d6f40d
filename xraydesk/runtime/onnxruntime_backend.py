"""ONNX Runtime on the CPU: the exported graph at float32 (or a quantized int8 graph).

ONNX Runtime's CPU provider has no bf16 convolutions, so its precisions are fp32 and int8.
A session's ``run`` may be called from several threads at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xraydesk.optional import float32_array
from xraydesk.optional import installed as _installed
from xraydesk.runtime.backend import Backend, Outputs, Precision, RuntimeUnavailable
from xraydesk.runtime.names import OUTPUT_NAMES

PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")


def installed() -> bool:
    """Whether the package can be imported, without importing it."""
    return _installed("onnxruntime")


class OnnxRuntimeBackend(Backend):
    runtime = "onnxruntime"

    def __init__(self, graph: Path, precision: Precision = "fp32", threads: int = 0) -> None:
        """``graph``: the fp32 export, or for int8 a quantized graph (``quantize``)."""
        if precision not in PRECISIONS:
            raise RuntimeUnavailable(f"ONNX Runtime has no {precision} CPU kernels here")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeUnavailable("ONNX Runtime is not installed") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per physical core
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for a bad graph
            raise RuntimeUnavailable(f"{graph}: ONNX Runtime cannot load it ({exc})") from exc
        self.precision = precision
        self.graph = graph

    def run(self, batch: np.ndarray, activations: bool = True) -> Outputs:
        names = list(OUTPUT_NAMES if activations else OUTPUT_NAMES[:2])
        out = self.session.run(names, {"input": float32_array(batch)})
        arrays = [np.ascontiguousarray(o, dtype=np.float32) for o in out]
        return Outputs(arrays[0], arrays[1], arrays[2] if activations else None)
