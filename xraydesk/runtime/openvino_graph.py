"""The OpenVINO model of a model's ResNet-50, built from its weights with OpenVINO's own
operations and saved as OpenVINO IR: what the OpenVINO runtimes (plain, mixed, rechecked)
compile.

Why not the ONNX graph: writing it meant importing onnx (0.3 s) and serialising 94 MB of
protobuf, which OpenVINO then parsed again (0.2 s) in every process until the mixed path's
parts were saved; the first ``xraydesk classify`` of a model paid all of it. The walk is
``resnet_walk``'s, the same as the ONNX graph's (same folded weights, same node and tensor
names, same checks of the weights), so the mixed path cuts both at the same node and
tests/runtime/test_onnx_graph.py checks both against torch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk.runtime.openvino_backend import import_openvino
from xraydesk.runtime.resnet_walk import walk


class OpenVinoEmitter:
    """``resnet_walk.Emitter`` of OpenVINO nodes (opset 13); each node gets the ONNX
    graph's node name as its friendly name and its output tensor's name."""

    def __init__(self) -> None:
        ov = import_openvino()
        self.ov = ov
        self.op = ov.opset13
        self.parameter: Any = None

    def _named(self, node: Any, output: str) -> Any:
        node.set_friendly_name(output)
        node.output(0).set_names({output})
        return node.output(0)

    def _constant(self, value: np.ndarray, name: str) -> Any:
        """A constant over ``value``'s own memory (the walk's fresh float32 array, kept
        alive by the constant): copying the 94 MB of weights into OpenVINO cost 0.2 s."""
        return self.op.constant(np.ascontiguousarray(value), name=name, shared_memory=True)

    def input(self, channels: int, size: int) -> Any:
        shape = self.ov.PartialShape([-1, channels, size, size])
        self.parameter = self.op.parameter(shape, self.ov.Type.f32, name="input")
        return self._named(self.parameter, "input")

    def conv(
        self, x: Any, name: str, weight: np.ndarray, bias: np.ndarray, stride: int, output: str
    ) -> Any:
        k = weight.shape[-1]
        pad = [k // 2] * 2
        kernel = self._constant(weight, f"{name}.w")
        # named as OpenVINO's ONNX reader names a Conv with a bias: the same names either way
        no_bias = f"{output}/WithoutBiases"
        y = self.op.convolution(x, kernel, [stride] * 2, pad, pad, [1, 1], name=no_bias)
        shift = self._constant(bias.reshape(1, -1, 1, 1), f"{name}.b")
        return self._named(self.op.add(y, shift), output)

    def relu(self, x: Any, output: str) -> Any:
        return self._named(self.op.relu(x), output)

    def add(self, a: Any, b: Any, output: str) -> Any:
        return self._named(self.op.add(a, b), output)

    def max_pool(self, x: Any, output: str) -> Any:
        pool = self.ov.opset1.max_pool(x, [2, 2], [1, 1], [1, 1], [3, 3], "floor", "explicit")
        return self._named(pool, output)

    def pooled(self, x: Any, pool: str, output: str) -> Any:
        mean = self._named(self.op.reduce_mean(x, np.array([2, 3], np.int64), True), pool)
        return self._named(self.op.reshape(mean, np.array([0, -1], np.int64), True), output)

    def linear(self, x: Any, weight: np.ndarray, bias: np.ndarray, output: str) -> Any:
        y = self.op.matmul(x, self._constant(weight, "fc.w"), False, True)
        return self._named(self.op.add(y, self._constant(bias, "fc.b")), output)


def resnet50_model(
    state: Mapping[str, np.ndarray], channels: int, size: int, consume: bool = False
) -> Any:
    """The ``ov.Model`` of the ResNet-50 whose ``state_dict`` is ``state``: input "input"
    float32 (batch, channels, size, size), the batch dynamic; outputs "logits",
    "features" and "activations" as the ONNX graph's (``onnx_graph.write_graph``, whose
    ``consume`` this takes too). Raises ValueError naming the key when the state is not
    such a network."""
    emit = OpenVinoEmitter()
    done = walk(state, channels, size, emit, consume)
    outputs = [done.logits, done.features, done.activations]
    return emit.ov.Model(outputs, [emit.parameter], "xraydesk-resnet50")


def save_ir(model: Any, xml: Path) -> None:
    """``model`` saved as ``xml`` and its ``.bin``, atomically: both are written under
    temporary names and the ``.bin`` moved into place before its ``.xml``, so a process
    that finds the ``.xml`` finds a whole model. Weights kept at fp32."""
    temp = xml.with_name(f".{xml.stem}-{os.getpid()}-{threading.get_ident()}.xml")
    try:
        import_openvino().save_model(model, str(temp), compress_to_fp16=False)
        os.replace(temp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(temp, xml)
    finally:
        for left in (temp, temp.with_suffix(".bin")):
            left.unlink(missing_ok=True)


__all__ = ["OpenVinoEmitter", "resnet50_model", "save_ir"]
