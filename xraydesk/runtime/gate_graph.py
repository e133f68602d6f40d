"""The input gate's network, and the appearance heads' of the same shape, as an OpenVINO
model built from their folded weights with OpenVINO's own operations (no torch, no ONNX),
compiled at fp32 on one thread: what the decode stage runs when OpenVINO is installed.

Why: the two networks run on every image's 64 x 64 thumbnail in the batch engine's decode
stage, and there the numpy pass (``trust.gate_forward``, im2col and matrix products) cost
0.6-0.7 ms CPU an image each, the largest part of the stage; the same network compiled by
OpenVINO costs 0.2-0.3 ms at batch 1 (Intel Xeon family 6 model 207, 2 cores;
tests/benchmarks/bench_gate.py). fp32 only: bf16 would be faster still but moves the
gate's probabilities. The numpy pass stays what the light build (no OpenVINO) runs, what
runs when compiling fails, and what ``XRAYDESK_GATE_RUNTIME=numpy`` forces.

Compiled lazily, once per runner (the gate and the heads are loaded once per process),
and only after ``COMPILE_AFTER`` images: compiling both networks costs 50-60 ms CPU, which
a folder earns back within about a hundred images but a single ``xraydesk classify`` of
one image would only pay. Until then, and while another thread compiles, calls run numpy.

Infer requests: taken from a list and put back after each call, with no lock held while
the network runs, so two decode threads never wait for each other. Not one request per
thread in thread-local storage: a request kept that way outlived its thread's Python state
and segfaulted the viewer on closing (``openvino_backend``'s docstring).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xraydesk.environment import from_environ
from xraydesk.runtime import openvino_backend

log = logging.getLogger(__name__)

# Images a runner sees in numpy before it compiles its OpenVINO model (see the docstring).
COMPILE_AFTER = 32
# fp32 always (OpenVINO's default on an AMX CPU is bf16), one thread on the calling core:
# the decode stage runs beside the classifier, each of its threads one image at a time.
CONFIG = {
    "INFERENCE_PRECISION_HINT": "f32",
    "PERFORMANCE_HINT": "LATENCY",
    "INFERENCE_NUM_THREADS": 1,
    "ENABLE_CPU_PINNING": False,
}


@dataclass(frozen=True)
class ConvLayer:
    """A convolution with its batch norm folded in, then ReLU and an optional 2 x 2 max
    pool: one block of ``GateNet.features``."""

    weight: np.ndarray  # (cout, cin, k, k) float32, torch's layout
    bias: np.ndarray  # (cout,) float32
    stride: int
    padding: int
    pool: bool


@dataclass(frozen=True)
class GateLayers:
    """The whole network in torch's layouts: the convolution blocks, then Flatten (of
    (C, H, W)), Linear, ReLU and the output Linear."""

    convs: tuple[ConvLayer, ...]
    hidden_weight: np.ndarray  # (hidden, C * H * W)
    hidden_bias: np.ndarray  # (hidden,)
    out_weight: np.ndarray  # (n_logits, hidden)
    out_bias: np.ndarray  # (n_logits,)
    side: int = 64  # the input thumbnail's side; one channel


def gate_model(layers: GateLayers | tuple[GateLayers, ...]) -> Any:
    """The ``ov.Model`` of ``layers``: input "thumbs" float32 (batch, 1, side, side), the
    batch dynamic; output "logits" (batch, n_logits). Several networks on the same input
    (the gate and the appearance heads, ``GateRunner.joint``) make one model whose output
    is their logits side by side, in order. ImportError without OpenVINO."""
    ov = openvino_backend.import_openvino()
    op = ov.opset13
    networks = layers if isinstance(layers, tuple) else (layers,)
    side = networks[0].side
    thumbs = op.parameter(ov.PartialShape([-1, 1, side, side]), ov.Type.f32)
    thumbs.set_friendly_name("thumbs")
    thumbs.output(0).set_names({"thumbs"})
    heads = [_branch(ov, thumbs.output(0), network) for network in networks]
    logits = heads[0] if len(heads) == 1 else op.concat(heads, 1)
    logits.output(0).set_names({"logits"})
    return ov.Model([logits.output(0)], [thumbs], "xraydesk-gate")


def _branch(ov: Any, x: Any, layers: GateLayers) -> Any:
    """One network's operations on the input ``x``; its logits node."""
    op = ov.opset13

    def const(value: np.ndarray) -> Any:
        return op.constant(np.ascontiguousarray(value, dtype=np.float32))

    for conv in layers.convs:
        pad = [conv.padding] * 2
        y = op.convolution(x, const(conv.weight), [conv.stride] * 2, pad, pad, [1, 1])
        y = op.relu(op.add(y, const(conv.bias.reshape(1, -1, 1, 1))))
        if conv.pool:
            y = ov.opset1.max_pool(y, [2, 2], [0, 0], [0, 0], [2, 2], "floor", "explicit")
        x = y.output(0)
    flat = op.reshape(x, np.array([0, -1], np.int64), True)
    hidden = op.matmul(flat, const(layers.hidden_weight), False, True)
    hidden = op.relu(op.add(hidden, const(layers.hidden_bias)))
    logits = op.matmul(hidden, const(layers.out_weight), False, True)
    return op.add(logits, const(layers.out_bias))


def compile_gate(layers: GateLayers | tuple[GateLayers, ...]) -> Any:
    """``layers`` compiled for the CPU with ``CONFIG``; OpenVINO's own errors pass."""
    return openvino_backend.core().compile_model(gate_model(layers), "CPU", CONFIG)


def numpy_forced() -> bool:
    """Whether ``XRAYDESK_GATE_RUNTIME`` asks for the numpy pass (read now; a bad value
    raises ``SettingError``)."""
    return from_environ().gate_runtime == "numpy"


Logits = Callable[[np.ndarray], np.ndarray]


class GateRunner:
    """The network as a function, (N, 1, side, side) float32 -> (N, n_logits) float32 logits:
    OpenVINO once compiled, ``fallback`` (the numpy pass) before, without OpenVINO, when
    compiling failed, when forced, and for inputs of another shape (whose error it gives).
    Thread-safe; no call ever waits for another."""

    def __init__(
        self,
        layers: GateLayers | tuple[GateLayers, ...],
        fallback: Logits,
        compile_after: int = COMPILE_AFTER,
    ) -> None:
        self.layers = layers  # one network, or several side by side (``joint``)
        self.networks = layers if isinstance(layers, tuple) else (layers,)
        self.side = self.networks[0].side
        self.fallback = fallback
        self.compile_after = compile_after
        self.compiled: Any = None
        # decided: never OpenVINO in this runner. The setting is read here, where the gate
        # is loaded, so that a bad value is reported by the front door, not by a worker.
        self.numpy_only = numpy_forced()
        self.compile_seconds: float | None = None
        self._seen = 0
        self._compiling = threading.Lock()
        self._free: list[Any] = []  # idle infer requests; list.pop/append are atomic
        self._tensor: Any = None  # ov.Tensor, kept to wrap inputs without importing again

    @classmethod
    def joint(cls, runners: tuple[GateRunner, ...]) -> GateRunner:
        """One runner for several networks on the same thumbnails: their logits side by
        side, (N, sum of their widths), from one compiled model and one call (the decode
        stage's gate and appearance heads: one inference request an image, not two).
        Each column is computed by the same operations as in its own runner."""
        fallbacks = tuple(runner.fallback for runner in runners)

        def side_by_side(thumbs: np.ndarray) -> np.ndarray:
            return np.concatenate([fallback(thumbs) for fallback in fallbacks], axis=1)

        layers = tuple(network for runner in runners for network in runner.networks)
        after = min(runner.compile_after for runner in runners)
        joined = cls(layers, side_by_side, after)  # type: ignore[arg-type]
        joined.numpy_only = any(runner.numpy_only for runner in runners)
        return joined

    @property
    def runtime(self) -> str:
        """ "openvino" once compiled, else "numpy" (so far)."""
        return "openvino" if self.compiled is not None else "numpy"

    def __call__(self, thumbs: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(thumbs, dtype=np.float32)
        compiled = self._ready(len(x))
        side = self.side
        if compiled is None or x.ndim != 4 or x.shape[1:] != (1, side, side) or not len(x):
            return self.fallback(x)
        try:
            return self._infer(compiled, x)
        except Exception as exc:  # never worse than the numpy pass
            log.debug("the gate's OpenVINO model failed (%s); numpy from now on", _named(exc))
            self.compiled, self.numpy_only = None, True
            return self.fallback(x)

    def _ready(self, rows: int) -> Any:
        """The compiled model, compiling it on the call that passes ``compile_after``
        images; None while numpy runs. A call that finds another compiling runs numpy."""
        if self.compiled is not None or self.numpy_only:
            return self.compiled
        self._seen += rows
        if self._seen <= self.compile_after or not self._compiling.acquire(blocking=False):
            return None
        try:
            if self.compiled is None and not self.numpy_only:
                self._compile()
        finally:
            self._compiling.release()
        return self.compiled

    def _compile(self) -> None:
        if not openvino_backend.installed():
            self.numpy_only = True
            return
        start = time.perf_counter()
        try:
            compiled = compile_gate(self.layers)
            self._tensor = openvino_backend.import_openvino().Tensor
        except Exception as exc:  # OpenVINO raises RuntimeError and others
            log.debug("the gate's network stays in numpy: OpenVINO failed (%s)", _named(exc))
            self.numpy_only = True
            return
        self.compile_seconds = time.perf_counter() - start
        log.debug("the gate's network compiled by OpenVINO in %.0f ms", 1e3 * self.compile_seconds)
        self.compiled = compiled

    def _infer(self, compiled: Any, x: np.ndarray) -> np.ndarray:
        try:
            request = self._free.pop()
        except IndexError:
            request = compiled.create_infer_request()
        try:
            request.set_input_tensor(self._tensor(x, shared_memory=True))
            request.infer()
            return request.get_output_tensor().data.copy()
        finally:
            self._free.append(request)


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


__all__ = ["COMPILE_AFTER", "ConvLayer", "GateLayers", "GateRunner", "compile_gate", "gate_model"]
