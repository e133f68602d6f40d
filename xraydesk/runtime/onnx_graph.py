"""The ONNX graph of a model's ResNet-50, built from its weights with numpy and onnx alone.

No torch: the light build has none and must still export a model for ONNX Runtime or
OpenVINO, and building from the weights file itself (``runtime.export``) means the graph
holds exactly what the file whose sha256 the card names holds. The network is the one of
``model.resnet`` (torchvision's layout and ``state_dict`` keys, v1.5 with the stride in
the 3 x 3 convolution), in inference mode: every batch norm is folded into the
convolution before it (in float64, stored as float32), so the graph is convolutions,
ReLUs, additions, one max pool, one average pool and the linear head. It has three
outputs, in ``OUTPUT_NAMES`` order: the logits, the pooled features that feed the head,
and the last stage's activations (what the class activation map weighs).
tests/runtime/test_onnx_graph.py checks all three against torch in both runtimes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper

from xraydesk.runtime.names import OUTPUT_NAMES

OPSET = 17
IR_VERSION = 8  # the lowest that opset 17 allows: read by every onnxruntime and OpenVINO
BN_EPS = 1e-5  # torch's BatchNorm2d default, which model.resnet keeps
STAGES = (3, 4, 6, 3)  # bottleneck blocks per stage of ResNet-50
EXPANSION = 4  # a bottleneck's output has 4 times its width in channels
FEATURES = 512 * EXPANSION  # 2048: the pooled features, the input of fc
_BN_KEYS = ("weight", "bias", "running_mean", "running_var")
_IGNORED = "num_batches_tracked"  # a training counter that changes nothing at inference


class _Builder:
    """Nodes and initialisers of one graph; every weight is checked as it is taken."""

    def __init__(self, state: Mapping[str, np.ndarray], out: BinaryIO, consume: bool) -> None:
        self.state = state
        self.consume = consume
        self.out = out
        self.used: set[str] = set()
        # The nodes; each weight is written to ``out`` as it is made (see ``write_graph``).
        self.model = onnx.ModelProto()
        self.graph = self.model.graph

    def take(self, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """The state's ``key`` as float64, after checking its shape (None: any size)."""
        if key not in self.state:
            raise ValueError(f"the weights have no {key!r}, which a ResNet-50 needs")
        value = np.asarray(self.state.pop(key) if self.consume else self.state[key])
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{key} is {value.dtype}, not floating point")
        if value.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(value.shape, shape, strict=True)
        ):
            expected = tuple("N" if s is None else s for s in shape)
            raise ValueError(f"{key} has shape {tuple(value.shape)}, expected {expected}")
        self.used.add(key)
        return value.astype(np.float64)

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

    def conv_bn(
        self,
        x: str,
        conv: str,
        norm: str,
        shape: tuple[int, int, int],
        stride: int,
        relu: bool,
        output: str | None = None,
    ) -> str:
        """Convolution ``conv`` (no bias; ``shape`` = out, in, kernel) with the batch norm
        ``norm`` folded into it, then a ReLU when asked."""
        out_ch, in_ch, k = shape
        weight = self.take(f"{conv}.weight", (out_ch, in_ch, k, k))
        gamma, beta, mean, var = (self.take(f"{norm}.{key}", (out_ch,)) for key in _BN_KEYS)
        if np.any(var < 0):
            raise ValueError(f"{norm}.running_var has negative values")
        scale = gamma / np.sqrt(var + BN_EPS)
        conv_out = f"{conv}.out" if relu or output is None else output
        y = self.node(
            "Conv",
            [
                x,
                self.constant(f"{conv}.w", weight * scale[:, None, None, None]),
                self.constant(f"{conv}.b", beta - mean * scale),
            ],
            conv_out,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
        )
        return self.node("Relu", [y], output or f"{conv}.relu") if relu else y

    def bottleneck(
        self, x: str, name: str, inplanes: int, planes: int, stride: int, output: str | None
    ) -> str:
        """1x1 down, 3x3 (with the stride), 1x1 up, plus the shortcut, then ReLU."""
        width = planes * EXPANSION
        y = self.conv_bn(x, f"{name}.conv1", f"{name}.bn1", (planes, inplanes, 1), 1, True)
        y = self.conv_bn(y, f"{name}.conv2", f"{name}.bn2", (planes, planes, 3), stride, True)
        y = self.conv_bn(y, f"{name}.conv3", f"{name}.bn3", (width, planes, 1), 1, False)
        shortcut = x
        if stride != 1 or inplanes != width:  # as model.resnet._make_layer decides
            shortcut = self.conv_bn(
                x,
                f"{name}.downsample.0",
                f"{name}.downsample.1",
                (width, inplanes, 1),
                stride,
                False,
            )
        total = self.node("Add", [y, shortcut], f"{name}.add")
        return self.node("Relu", [total], output or f"{name}.out")


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
    if channels < 1 or size < 1:
        raise ValueError(f"channels ({channels}) and size ({size}) must be positive")
    first = state.get("conv1.weight")
    if first is not None and np.ndim(first) == 4 and np.shape(first)[1] != channels:
        raise ValueError(
            f"conv1.weight has shape {tuple(np.shape(first))}: a network of "
            f"{np.shape(first)[1]} input channel(s), not {channels}"
        )
    header = onnx.ModelProto()  # first: readers (OpenVINO) recognise ONNX by its opening
    header.ir_version = IR_VERSION
    header.producer_name = "xraydesk"
    header.opset_import.append(helper.make_opsetid("", OPSET))
    out.write(header.SerializeToString())
    b = _Builder(state, out, consume)
    x = b.conv_bn("input", "conv1", "bn1", (64, channels, 7), 2, True)
    x = b.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    inplanes = 64
    for stage, blocks in enumerate(STAGES, start=1):
        planes = 64 * 2 ** (stage - 1)
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            last = stage == len(STAGES) and block == blocks - 1
            name = f"layer{stage}.{block}"
            output = OUTPUT_NAMES[2] if last else None
            x = b.bottleneck(x, name, inplanes, planes, stride, output)
            inplanes = planes * EXPANSION
    pooled = b.node("GlobalAveragePool", [x], "avgpool")
    features = b.node("Flatten", [pooled], OUTPUT_NAMES[1], axis=1)
    weight = b.take("fc.weight", (None, FEATURES))
    classes = int(weight.shape[0])
    bias = b.take("fc.bias", (classes,))
    fc = [features, b.constant("fc.w", weight), b.constant("fc.b", bias)]
    b.node("Gemm", fc, OUTPUT_NAMES[0], transB=1)
    unexpected = sorted(k for k in b.state if k not in b.used and not k.endswith(_IGNORED))
    if unexpected:
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        raise ValueError(f"the weights have entries a ResNet-50 has not: {unexpected[:5]}{more}")
    side = -(-size // 32)  # five halvings (kernel 3 or 7, padded), each rounding up
    graph = b.graph
    graph.name = "xraydesk-resnet50"
    graph.input.append(
        helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", channels, size, size])
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info(OUTPUT_NAMES[0], TensorProto.FLOAT, ["batch", classes]),
            helper.make_tensor_value_info(OUTPUT_NAMES[1], TensorProto.FLOAT, ["batch", FEATURES]),
            helper.make_tensor_value_info(
                OUTPUT_NAMES[2], TensorProto.FLOAT, ["batch", FEATURES, side, side]
            ),
        ]
    )
    model = b.model
    # onnx.checker parses a copy of the weights: tests/runtime/test_onnx_graph.py checks the graphs
    # instead, which are the same for every model but for the numbers.
    out.write(model.SerializeToString())


__all__ = ["resnet50_graph", "write_graph"]
