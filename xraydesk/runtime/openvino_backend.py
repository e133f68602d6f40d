"""OpenVINO on the CPU: the exported graph at fp32, or bf16 where the CPU has native bf16
(AVX-512 BF16 or AMX), or a quantized int8 graph.

The inference precision is always set explicitly: OpenVINO's own default on an AMX CPU is
bf16, which would make "fp32" a lie. One infer request per call, made and dropped in the
calling thread, so the viewer and a batch run share the compiled model without waiting
for each other. (A request kept per thread in thread-local storage outlived its thread's
Python state: the viewer segfaulted on closing after its worker had used it.)

OpenVINO is only ever imported through ``import_openvino``: ``import openvino`` imports its
model converter, whose ``openvino_telemetry`` writes ``$HOME/intel/openvino_ga_cid`` and
``$HOME/intel/stats`` and sends an "import" event to Google Analytics. XRayDesk promises
that nothing leaves the machine, so the telemetry package is made unimportable first
(OpenVINO then falls back to its own no-op stub); no opt-out file is written to $HOME.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from xraydesk.optional import float32_array
from xraydesk.optional import installed as _installed
from xraydesk.runtime.backend import Backend, Outputs, Precision, RuntimeUnavailable
from xraydesk.runtime.names import OUTPUT_NAMES

PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "int8")
_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: quantized layers, f32 around


# OpenVINO's telemetry package: blocked before OpenVINO is imported (see the docstring).
TELEMETRY_MODULE = "openvino_telemetry"


def import_openvino() -> ModuleType:
    """``openvino``, imported with its telemetry switched off (ImportError if missing).

    A ``None`` entry in ``sys.modules`` makes ``import openvino_telemetry`` raise
    ImportError, which ``openvino.tools.ovc`` answers with its no-op stub: no client-id
    file, no stats file, no DNS query, no connection. Works the same in a frozen app."""
    if TELEMETRY_MODULE not in sys.modules:
        sys.modules[TELEMETRY_MODULE] = None  # type: ignore[assignment]
    import openvino

    return openvino


def installed() -> bool:
    """Whether the package can be imported, without importing it."""
    return _installed("openvino")


@functools.cache
def core() -> Any:
    """The process's one ``ov.Core``: making one loads OpenVINO's CPU plugin (about 0.2 s),
    which asking for the CPU's capabilities and compiling each graph then share."""
    return import_openvino().Core()


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether OpenVINO runs bf16 natively on this CPU (else it would emulate it, slowly);
    asked once per process."""
    try:
        return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:
        return False


class OpenVinoBackend(Backend):
    runtime = "openvino"

    def __init__(self, graph: Path, precision: Precision = "fp32", threads: int = 0) -> None:
        if precision not in PRECISIONS:
            raise RuntimeUnavailable(f"OpenVINO has no {precision} precision")
        try:
            ov_core = core()
        except ImportError as exc:
            raise RuntimeUnavailable("OpenVINO is not installed") from exc
        except Exception as exc:  # its CPU plugin did not load
            raise RuntimeUnavailable(f"OpenVINO cannot start ({exc})") from exc
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _HINT[precision],
            "PERFORMANCE_HINT": "LATENCY",  # one stream using every core: batch 1 and 32 alike
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = ov_core.compile_model(str(graph), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError for most failures
            raise RuntimeUnavailable(f"{graph}: OpenVINO cannot compile it ({exc})") from exc
        ports = {port.get_any_name(): port for port in self.compiled.outputs}
        self._ports = [ports[name] for name in OUTPUT_NAMES]
        self.precision = precision
        self.graph = graph

    def run(self, batch: np.ndarray, activations: bool = True) -> Outputs:
        request = self.compiled.create_infer_request()
        result = request.infer({0: float32_array(batch)})
        # infer() returns views of the request's buffers, reused by its next call: copy.
        logits, features, stage = (result[port] for port in self._ports)
        return Outputs(
            np.array(logits, dtype=np.float32),
            np.array(features, dtype=np.float32),
            np.array(stage, dtype=np.float32) if activations else None,
        )
