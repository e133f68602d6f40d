"""The one walk through a model's ResNet-50 weights that every exported graph is built by.

The network is the one of ``model.resnet`` (torchvision's layout and ``state_dict`` keys,
v1.5 with the stride in the 3 x 3 convolution), in inference mode: every batch norm is
folded into the convolution before it (in float64, stored as float32), so the graph is
convolutions, ReLUs, additions, one max pool, one average pool and the linear head. It
has three outputs, in ``OUTPUT_NAMES`` order: the logits, the pooled features that feed
the head, and the last stage's activations (what the class activation map weighs).

``walk`` checks every weight as it takes it (name, shape, floating point, no negative
variance, no entry a ResNet-50 has not) and hands each layer, with its folded float32
weights and its name, to an ``Emitter``: ``onnx_graph`` writes ONNX (ONNX Runtime, the
light build), ``openvino_graph`` builds OpenVINO's model directly (no onnx import, no
ONNX written and parsed again). The layer order, the names (the mixed path cuts at
"maxpool") and the numbers are therefore the same in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from xraydesk.runtime.names import OUTPUT_NAMES

BN_EPS = 1e-5  # torch's BatchNorm2d default, which model.resnet keeps
STAGES = (3, 4, 6, 3)  # bottleneck blocks per stage of ResNet-50
EXPANSION = 4  # a bottleneck's output has 4 times its width in channels
FEATURES = 512 * EXPANSION  # 2048: the pooled features, the input of fc
STEM = "maxpool"  # the stem's last node: where the mixed path cuts (``runtime.mixed``)
_BN_KEYS = ("weight", "bias", "running_mean", "running_var")
_IGNORED = "num_batches_tracked"  # a training counter that changes nothing at inference

T = TypeVar("T")


class Emitter(Protocol[T]):
    """Makes one graph's nodes; ``T`` is its handle of a tensor. Every node is named
    (``output``), as the ONNX graph names its nodes and output tensors."""

    def input(self, channels: int, size: int) -> T:
        """The float32 input (batch, channels, size, size), the batch dynamic."""

    def conv(
        self, x: T, name: str, weight: np.ndarray, bias: np.ndarray, stride: int, output: str
    ) -> T:
        """Convolution (``weight`` out, in, k, k; padding k // 2) plus ``bias``; ``name``
        names its weights."""

    def relu(self, x: T, output: str) -> T: ...

    def add(self, a: T, b: T, output: str) -> T: ...

    def max_pool(self, x: T, output: str) -> T:
        """3 x 3, stride 2, padding 1."""

    def pooled(self, x: T, pool: str, output: str) -> T:
        """The global average over the spatial axes (node ``pool``), flattened to
        (batch, channels)."""

    def linear(self, x: T, weight: np.ndarray, bias: np.ndarray, output: str) -> T:
        """``x @ weight.T + bias`` (``weight``: classes x features)."""


@dataclass(frozen=True)
class Walked(Generic[T]):
    """The three outputs of a walked network, in ``OUTPUT_NAMES`` order, and its shape."""

    logits: T
    features: T
    activations: T
    classes: int
    side: int  # the activations' height and width


class _Weights:
    """The state's weights, each checked as it is taken, and what was taken."""

    def __init__(self, state: Mapping[str, np.ndarray], consume: bool) -> None:
        self.state = state
        self.consume = consume
        self.used: set[str] = set()

    def take(self, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """The state's ``key`` as stored, after checking its shape (None: any size)."""
        if key not in self.state:
            raise ValueError(f"the weights have no {key!r}, which a ResNet-50 needs")
        value = np.asarray(self.state.pop(key) if self.consume else self.state[key])  # type: ignore[attr-defined]
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{key} is {value.dtype}, not floating point")
        if value.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(value.shape, shape, strict=True)
        ):
            expected = tuple("N" if s is None else s for s in shape)
            raise ValueError(f"{key} has shape {tuple(value.shape)}, expected {expected}")
        self.used.add(key)
        return value

    def folded(
        self, conv: str, norm: str, shape: tuple[int, int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Convolution ``conv``'s weight (``shape`` = out, in, kernel) with batch norm
        ``norm`` folded in, and the bias that folding gives: computed in float64 (the
        stored weight times the float64 scale, one rounding to float32)."""
        out_ch, in_ch, k = shape
        weight = self.take(f"{conv}.weight", (out_ch, in_ch, k, k))
        gamma, beta, mean, var = (
            self.take(f"{norm}.{key}", (out_ch,)).astype(np.float64) for key in _BN_KEYS
        )
        if np.any(var < 0):
            raise ValueError(f"{norm}.running_var has negative values")
        scale = gamma / np.sqrt(var + BN_EPS)
        folded = np.multiply(weight, scale[:, None, None, None], dtype=np.float64)
        return folded.astype(np.float32), (beta - mean * scale).astype(np.float32)

    def unexpected(self) -> list[str]:
        return sorted(k for k in self.state if k not in self.used and not k.endswith(_IGNORED))


def check_input(state: Mapping[str, np.ndarray], channels: int, size: int) -> None:
    """ValueError when the input shape is not positive or conv1 takes other channels."""
    if channels < 1 or size < 1:
        raise ValueError(f"channels ({channels}) and size ({size}) must be positive")
    first = state.get("conv1.weight")
    if first is not None and np.ndim(first) == 4 and np.shape(first)[1] != channels:
        raise ValueError(
            f"conv1.weight has shape {tuple(np.shape(first))}: a network of "
            f"{np.shape(first)[1]} input channel(s), not {channels}"
        )


def walk(
    state: Mapping[str, np.ndarray],
    channels: int,
    size: int,
    emit: Emitter[T],
    consume: bool = False,
) -> Walked[T]:
    """The ResNet-50 whose ``state_dict`` is ``state``, made by ``emit`` layer by layer.

    Raises ValueError naming the key when the state is not such a network. ``consume``:
    ``state`` (a dict of the caller's, unused afterwards) is emptied as each weight is
    taken, so the weights are held once, not twice (the export)."""
    check_input(state, channels, size)
    w = _Weights(state, consume)

    def conv_bn(
        x: T,
        conv: str,
        norm: str,
        shape: tuple[int, int, int],
        stride: int,
        relu: bool,
        out: str | None = None,
    ) -> T:
        weight, bias = w.folded(conv, norm, shape)
        conv_out = f"{conv}.out" if relu or out is None else out
        y = emit.conv(x, conv, weight, bias, stride, conv_out)
        del weight, bias  # now held by the emitter alone (ONNX: written out; OpenVINO: shared)
        return emit.relu(y, out or f"{conv}.relu") if relu else y

    x = conv_bn(emit.input(channels, size), "conv1", "bn1", (64, channels, 7), 2, True)
    x = emit.max_pool(x, STEM)
    inplanes = 64
    for stage, blocks in enumerate(STAGES, start=1):
        planes = 64 * 2 ** (stage - 1)
        width = planes * EXPANSION
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            last = stage == len(STAGES) and block == blocks - 1
            name = f"layer{stage}.{block}"
            # 1x1 down, 3x3 (with the stride), 1x1 up, plus the shortcut, then ReLU
            y = conv_bn(x, f"{name}.conv1", f"{name}.bn1", (planes, inplanes, 1), 1, True)
            y = conv_bn(y, f"{name}.conv2", f"{name}.bn2", (planes, planes, 3), stride, True)
            y = conv_bn(y, f"{name}.conv3", f"{name}.bn3", (width, planes, 1), 1, False)
            shortcut = x
            if stride != 1 or inplanes != width:  # as model.resnet._make_layer decides
                down = f"{name}.downsample"
                shortcut = conv_bn(x, f"{down}.0", f"{down}.1", (width, inplanes, 1), stride, False)
            total = emit.add(y, shortcut, f"{name}.add")
            x = emit.relu(total, OUTPUT_NAMES[2] if last else f"{name}.out")
            inplanes = width
    activations = x
    features = emit.pooled(x, "avgpool", OUTPUT_NAMES[1])
    weight = w.take("fc.weight", (None, FEATURES))
    classes = int(weight.shape[0])
    bias = w.take("fc.bias", (classes,))
    logits = emit.linear(
        features, weight.astype(np.float32), bias.astype(np.float32), OUTPUT_NAMES[0]
    )
    unexpected = w.unexpected()
    if unexpected:
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        raise ValueError(f"the weights have entries a ResNet-50 has not: {unexpected[:5]}{more}")
    side = -(-size // 32)  # five halvings (kernel 3 or 7, padded), each rounding up
    return Walked(logits, features, activations, classes, side)


__all__ = ["BN_EPS", "FEATURES", "STAGES", "STEM", "Emitter", "Walked", "check_input", "walk"]
