"""The ONNX graph of a model's ResNet-50, built from its weights with numpy and onnx alone.

No torch: the light build has none and must still export a model for ONNX Runtime, and
building from the weights file itself (``runtime.export``) means the graph holds exactly
what the file whose sha256 the card names holds. The network, its folded batch norms,
its node names and its checks of the weights are ``resnet_walk``'s, shared with the
OpenVINO model (``openvino_graph``); this module only writes what the walk makes as ONNX.
tests/runtime/test_onnx_graph.py checks all three outputs against torch in both runtimes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper

from xraydesk.runtime.names import OUTPUT_NAMES
from xraydesk.runtime.resnet_walk import FEATURES, check_input, walk

OPSET = 17
IR_VERSION = 8  # the lowest that opset 17 allows: read by every onnxruntime and OpenVINO


class _OnnxEmitter:
    """``resnet_walk.Emitter`` of ONNX nodes; every weight is written to ``out`` as it is
    made (see ``write_graph``), the nodes at the end."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.model = onnx.ModelProto()
        self.graph = self.model.graph

    def constant(self, name: str, value: np.ndarray) -> str:
        """Write the float32 weight ``value`` to ``out`` as a model holding only it."""
        chunk = onnx.ModelProto()
        tensor = chunk.graph.initializer.add()
        tensor.name = name
        tensor.data_type = TensorProto.FLOAT
        tensor.dims.extend(value.shape)
        tensor.raw_data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        self.out.write(chunk.SerializeToString())
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.graph.node.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def input(self, channels: int, size: int) -> str:
        return "input"

    def conv(
        self, x: str, name: str, weight: np.ndarray, bias: np.ndarray, stride: int, output: str
    ) -> str:
        k = weight.shape[-1]
        inputs = [x, self.constant(f"{name}.w", weight), self.constant(f"{name}.b", bias)]
        return self.node(
            "Conv", inputs, output, kernel_shape=[k, k], strides=[stride] * 2, pads=[k // 2] * 4
        )

    def relu(self, x: str, output: str) -> str:
        return self.node("Relu", [x], output)

    def add(self, a: str, b: str, output: str) -> str:
        return self.node("Add", [a, b], output)

    def max_pool(self, x: str, output: str) -> str:
        return self.node("MaxPool", [x], output, kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)

    def pooled(self, x: str, pool: str, output: str) -> str:
        return self.node("Flatten", [self.node("GlobalAveragePool", [x], pool)], output, axis=1)

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, output: str) -> str:
        fc = [x, self.constant("fc.w", weight), self.constant("fc.b", bias)]
        return self.node("Gemm", fc, output, transB=1)


def resnet50_graph(state: Mapping[str, np.ndarray], channels: int, size: int) -> bytes:
    """``write_graph`` into memory: the serialised ONNX model."""
    buffer = io.BytesIO()
    write_graph(state, channels, size, buffer)
    return buffer.getvalue()


def write_graph(
    state: Mapping[str, np.ndarray],
    channels: int,
    size: int,
    out: BinaryIO,
    consume: bool = False,
) -> None:
    """Write the ONNX model of the ResNet-50 whose ``state_dict`` is ``state`` to ``out``.

    Streamed, to hold the weights once: a protobuf message is the merge of its parts
    written one after the other (a repeated field's entries are appended), so each weight
    is written as a model holding only that initialiser as soon as it is made, after a
    header (IR version, opset) and before the nodes, inputs and outputs. Every ONNX
    reader (onnx, ONNX Runtime, OpenVINO) parses the file as the one model. Building it
    whole and serialising it held two more copies of the weights (the message and its
    bytes): the first classify of a model in the light build peaked at 435 MB against
    the light build's budget of 400 MB resident (now about 340 MB).

    Input "input": float32 (batch, channels, size, size), the batch dynamic. Outputs
    "logits" (batch, classes), "features" (batch, 2048) and "activations" (batch, 2048,
    h, w). Raises ValueError naming the key when the state is not such a network.
    ``consume``: ``state`` (a dict of the caller's, unused afterwards) is emptied as each
    weight enters the graph, so the weights are held once, not twice (the export).
    """
    check_input(state, channels, size)  # before the header: nothing written for bad input
    header = onnx.ModelProto()  # first: readers (OpenVINO) recognise ONNX by its opening
    header.ir_version = IR_VERSION
    header.producer_name = "xraydesk"
    header.opset_import.append(helper.make_opsetid("", OPSET))
    out.write(header.SerializeToString())
    emit = _OnnxEmitter(out)
    done = walk(state, channels, size, emit, consume)
    graph = emit.graph
    graph.name = "xraydesk-resnet50"
    graph.input.append(
        helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", channels, size, size])
    )
    shapes = (
        ["batch", done.classes],
        ["batch", FEATURES],
        ["batch", FEATURES, done.side, done.side],
    )
    graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
        for name, shape in zip(OUTPUT_NAMES, shapes, strict=True)
    )
    # onnx.checker parses a copy of the weights: tests/runtime/test_onnx_graph.py checks the
    # graphs instead, which are the same for every model but for the numbers.
    out.write(emit.model.SerializeToString())


__all__ = ["resnet50_graph", "write_graph"]
