"""The input gate's network in numpy: what the app runs, in both builds.

``GateNet`` (``gate_net``, torch) is what ``training/train_gate.py`` trains. The shipped
``gate.safetensors`` is run here with numpy alone, so the light build, which has no torch,
gates every image exactly as the full build does. Batch norm is folded into the
convolutions once at load (eval mode); each convolution is then one matrix product over
the image's patches (im2col), computed channels-last so that the patches are copied in
contiguous runs. tests/trust/test_gate_forward.py checks the logits against the torch network.

Where OpenVINO is installed, ``GateWeights.runner`` hands the same folded weights to
``runtime.gate_graph``, which compiles them into an OpenVINO model (fp32) that costs a
third of this pass; this pass remains its fallback and the light build's network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Products cut into row blocks under OpenBLAS's threading threshold (``xraydesk.blas``).
from xraydesk.blas import matmul_on_this_thread as _matmul

if TYPE_CHECKING:
    from xraydesk.runtime.gate_graph import GateLayers, GateRunner

THUMB = 64  # the input side; kept here so this module needs nothing from gate.py
BN_EPS = 1e-5  # torch's BatchNorm2d default, which GateNet uses


@dataclass(frozen=True)
class _ConvSpec:
    """One conv-BN-ReLU(-MaxPool2d(2)) block of ``GateNet.features``."""

    conv: str  # state-dict prefix of the Conv2d (no bias)
    norm: str  # ... and of the BatchNorm2d after it
    cin: int
    cout: int
    kernel: int
    stride: int
    padding: int
    pool: bool


# GateNet.features, in order: a strided 5 x 5 layer (64 -> 32), then three 3 x 3 blocks
# each halved by a 2 x 2 max pool (32 -> 16 -> 8 -> 4).
CONVS = (
    _ConvSpec("features.0", "features.1", 1, 16, 5, 2, 2, False),
    _ConvSpec("features.3", "features.4", 16, 32, 3, 1, 1, True),
    _ConvSpec("features.7", "features.8", 32, 64, 3, 1, 1, True),
    _ConvSpec("features.11", "features.12", 64, 64, 3, 1, 1, True),
)
FINAL_SIDE = 4  # the feature map's side after the last pool
HIDDEN = "head.1"  # Flatten -> Linear(1024, 64) -> ReLU -> Dropout (nothing in eval)
OUT = "out"  # Linear(64, 9)
N_HIDDEN = 64
N_LOGITS = 9


def expected_shapes(n_logits: int = N_LOGITS) -> dict[str, tuple[int, ...]]:
    """Every tensor GateNet's state dict holds, with its shape (``n_logits`` outputs: 9
    for the gate, other widths for networks of the same shape, ``trust.appearance``)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for s in CONVS:
        shapes[f"{s.conv}.weight"] = (s.cout, s.cin, s.kernel, s.kernel)
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{s.norm}.{p}"] = (s.cout,)
        shapes[f"{s.norm}.num_batches_tracked"] = ()
    flat = CONVS[-1].cout * FINAL_SIDE * FINAL_SIDE
    shapes[f"{HIDDEN}.weight"] = (N_HIDDEN, flat)
    shapes[f"{HIDDEN}.bias"] = (N_HIDDEN,)
    shapes[f"{OUT}.weight"] = (n_logits, N_HIDDEN)
    shapes[f"{OUT}.bias"] = (n_logits,)
    return shapes


# Unused at inference; torch itself accepts a state dict without them (old versions).
OPTIONAL = frozenset(f"{s.norm}.num_batches_tracked" for s in CONVS)


@dataclass(frozen=True)
class _Conv:
    """A convolution with its batch norm folded in, ready for channels-last im2col."""

    weight: np.ndarray  # (k * k * cin, cout) float32: rows in (ky, kx, cin) order
    bias: np.ndarray  # (cout,) float32
    kernel: int
    stride: int
    padding: int
    pool: bool


@dataclass(frozen=True)
class GateWeights:
    """The gate network's weights, prepared for a numpy forward pass (eval mode)."""

    convs: tuple[_Conv, ...]
    hidden_weight: np.ndarray  # (1024, 64): rows in channels-last (H, W, C) order
    hidden_bias: np.ndarray  # (64,)
    out_weight: np.ndarray  # (64, 9)
    out_bias: np.ndarray  # (9,)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, n_logits: int = N_LOGITS) -> GateWeights:
        """The weights and the ``info`` metadata of a gate safetensors file.

        ``ValueError`` names any tensor that is missing, unexpected or misshapen, and says
        so for a file that is not safetensors at all (safetensors' own error type is not
        one every caller would catch)."""
        from safetensors import SafetensorError, safe_open
        from safetensors.numpy import load_file

        try:
            state = load_file(str(path))
            with safe_open(str(path), framework="np") as f:
                info = json.loads((f.metadata() or {}).get("info", "{}"))
        except SafetensorError as exc:
            raise ValueError(f"not a readable safetensors file: {exc}") from None
        return cls.from_state(state, info, n_logits)

    @classmethod
    def from_state(
        cls,
        state: dict[str, np.ndarray],
        info: dict[str, Any] | None = None,
        n_logits: int = N_LOGITS,
    ) -> GateWeights:
        """Check a GateNet state dict (numpy arrays) and fold it for inference."""
        tensors = _checked(state, n_logits)
        convs = tuple(_fold(s, tensors) for s in CONVS)
        # torch flattens (C, H, W); the numpy pass ends channels-last (H, W, C), so the
        # hidden layer's input columns are permuted once here instead of every pass.
        c, side = CONVS[-1].cout, FINAL_SIDE
        hidden = tensors[f"{HIDDEN}.weight"].reshape(N_HIDDEN, c, side, side)
        hidden = hidden.transpose(2, 3, 1, 0).reshape(side * side * c, N_HIDDEN)
        return cls(
            convs=convs,
            hidden_weight=_f32(hidden),
            hidden_bias=_f32(tensors[f"{HIDDEN}.bias"]),
            out_weight=_f32(tensors[f"{OUT}.weight"].T),
            out_bias=_f32(tensors[f"{OUT}.bias"]),
            info=dict(info or {}),
        )

    def runner(self, compile_after: int | None = None) -> GateRunner:
        """The network as the app runs it: OpenVINO where it is installed and compiles,
        this numpy pass (``logits``) otherwise (``runtime.gate_graph``); ``compile_after``
        images run in numpy first (default ``gate_graph.COMPILE_AFTER``)."""
        from xraydesk.runtime.gate_graph import COMPILE_AFTER, GateRunner

        after = COMPILE_AFTER if compile_after is None else compile_after
        return GateRunner(self.layers(), self.logits, after)

    def layers(self) -> GateLayers:
        """The same folded weights in torch's layouts, as an OpenVINO model takes them:
        convolutions (cout, cin, k, k), the hidden layer's columns in (C, H, W) order."""
        from xraydesk.runtime.gate_graph import ConvLayer, GateLayers

        convs = []
        for conv in self.convs:
            k, cout = conv.kernel, conv.weight.shape[1]
            oihw = conv.weight.reshape(k, k, -1, cout).transpose(3, 2, 0, 1)
            convs.append(ConvLayer(_f32(oihw), conv.bias, conv.stride, conv.padding, conv.pool))
        side = FINAL_SIDE
        hidden = self.hidden_weight.reshape(side, side, -1, N_HIDDEN).transpose(3, 2, 0, 1)
        return GateLayers(
            convs=tuple(convs),
            hidden_weight=_f32(hidden.reshape(N_HIDDEN, -1)),
            hidden_bias=self.hidden_bias,
            out_weight=_f32(self.out_weight.T),
            out_bias=self.out_bias,
            side=THUMB,
        )

    def logits(self, thumbs: np.ndarray) -> np.ndarray:
        """(N, 1, 64, 64) standardised thumbnails -> (N, 9) float32 logits, as
        ``GateNet.forward`` computes them in eval mode."""
        x = np.asarray(thumbs, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (1, THUMB, THUMB):
            raise ValueError(
                f"the gate reads thumbnails of shape (N, 1, {THUMB}, {THUMB}), not {x.shape}"
            )
        n = len(x)
        if n == 0:
            return np.zeros((0, len(self.out_bias)), np.float32)
        x = x.reshape(n, THUMB, THUMB, 1)  # channels-last; one channel, so a free reshape
        for conv in self.convs:
            x = _convolve(x, conv)
            if conv.pool:  # max pool before ReLU: they commute, and a quarter as much work
                x = _max_pool(x)
            np.maximum(x, 0.0, out=x)
        hidden = _matmul(x.reshape(n, -1), self.hidden_weight)
        hidden += self.hidden_bias
        np.maximum(hidden, 0.0, out=hidden)
        out = hidden @ self.out_weight
        out += self.out_bias
        return out


def _checked(state: dict[str, np.ndarray], n_logits: int = N_LOGITS) -> dict[str, np.ndarray]:
    """The state dict's tensors as float64, after checking names and shapes."""
    expected = expected_shapes(n_logits)
    for key in state:
        if key not in expected:
            raise ValueError(f"the gate's weights hold an unexpected tensor {key!r}")
    tensors: dict[str, np.ndarray] = {}
    for key, shape in expected.items():
        if key not in state:
            if key in OPTIONAL:
                continue
            raise ValueError(f"the gate's weights have no tensor {key!r}")
        value = np.asarray(state[key])
        if value.shape != shape:
            raise ValueError(f"the gate's tensor {key!r} has shape {value.shape}, expected {shape}")
        if key not in OPTIONAL:
            tensors[key] = value.astype(np.float64)
    return tensors


def _fold(spec: _ConvSpec, tensors: dict[str, np.ndarray]) -> _Conv:
    """Conv2d (no bias) then eval-mode BatchNorm2d, as one convolution with a bias."""
    weight = tensors[f"{spec.conv}.weight"]
    var = tensors[f"{spec.norm}.running_var"]
    if not np.all(var + BN_EPS > 0):
        raise ValueError(f"the gate's tensor '{spec.norm}.running_var' has negative variances")
    scale = tensors[f"{spec.norm}.weight"] / np.sqrt(var + BN_EPS)
    bias = tensors[f"{spec.norm}.bias"] - tensors[f"{spec.norm}.running_mean"] * scale
    folded = weight * scale[:, None, None, None]  # (cout, cin, k, k)
    # rows in (ky, kx, cin) order: the order a channels-last patch flattens in
    folded = folded.transpose(2, 3, 1, 0).reshape(-1, spec.cout)
    return _Conv(_f32(folded), _f32(bias), spec.kernel, spec.stride, spec.padding, spec.pool)


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _convolve(x: np.ndarray, conv: _Conv) -> np.ndarray:
    """A zero-padded 2-D convolution of channels-last maps (N, H, W, C): im2col, then one
    matrix product. Returns (N, H', W', cout) float32."""
    p, k, s = conv.padding, conv.kernel, conv.stride
    n = len(x)
    padded = _zero_padded(x, p)
    # (N, H', W', C, k, k) views; strided layers keep every s-th window
    windows = sliding_window_view(padded, (k, k), axis=(1, 2))[:, ::s, ::s]
    h, w = windows.shape[1:3]
    # (N, H', W', ky, kx, C): each patch row (kx, C) is contiguous in memory, so the copy
    # that builds the columns runs fast, and matches the weight's (ky, kx, cin) rows
    columns = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * w, -1)
    out = _matmul(columns, conv.weight)
    out += conv.bias
    return out.reshape(n, h, w, -1)


def _zero_padded(x: np.ndarray, p: int) -> np.ndarray:
    """(N, H, W, C) maps with ``p`` zeros around H and W: what ``np.pad`` makes, without
    its per-call bookkeeping (0.2-0.3 ms a call, a quarter of the gate's time on one
    image, Intel Xeon family 6 model 207)."""
    if p == 0:
        return x
    n, h, w, c = x.shape
    padded = np.zeros((n, h + 2 * p, w + 2 * p, c), dtype=x.dtype)
    padded[:, p : p + h, p : p + w] = x
    return padded


def _max_pool(x: np.ndarray) -> np.ndarray:
    """MaxPool2d(2) of channels-last maps with even sides: the larger of four strided
    views (several times faster than a reduction over two strided axes)."""
    top = np.maximum(x[:, 0::2, 0::2], x[:, 0::2, 1::2])
    return np.maximum(top, np.maximum(x[:, 1::2, 0::2], x[:, 1::2, 1::2]), out=top)
