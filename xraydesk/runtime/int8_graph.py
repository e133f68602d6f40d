"""The int8 OpenVINO graph of a model's ResNet-50, and its calibration (issue 28).

Why int8: on a CPU without AMX, plain OpenVINO bf16 already runs at the hardware's bf16
limit; AVX-512 VNNI (or AVX-VNNI) runs u8 x i8 convolutions faster. The graph is the
exported one (``resnet_walk``, the same folded weights and names) with an OpenVINO
FakeQuantize on the input and the weights of each quantized convolution, which OpenVINO's
low-precision pass turns into int8 convolutions:

- the input per tensor, u8 from 0 to the largest value seen on calibration films at fp32
  (every such input follows a ReLU; clipping at a high percentile was measured worse);
- the weights per output channel, symmetric.

Not quantized: the stem (``STEM_CONV``, on the raw intensities, where rounding weighs
most, as in ``mixed``) and the convolutions whose names start with ``KEPT_OUT`` (the
first stage, ``layer1``: nearly all of the int8 error on chest-3class;
tests/benchmarks/README.md, bench_int8). Those run at fp32: ``openvino_backend`` compiles
an int8 graph with an f32 inference precision (read back from OpenVINO's runtime model in
tests/runtime/test_int8_graph.py), hence the verdict's name ``INT8_VARIANT``.

The ranges come from real films, which do not ship, so they are computed by
tests/benchmarks/bench_runtime.py and shipped per weights (``int8_ranges``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xraydesk.model.card import ModelCard
from xraydesk.runtime.backend import RuntimeUnavailable
from xraydesk.runtime.export import (
    INT8_TAG,
    ExportedGraph,
    graph_key,
    prune_cache,
    resnet50_state,
    runtime_cache_dir,
)
from xraydesk.runtime.openvino_graph import OpenVinoEmitter, save_ir
from xraydesk.runtime.resnet_walk import STAGES, walk

if TYPE_CHECKING:
    from xraydesk.runtime.int8_ranges import Int8Ranges

log = logging.getLogger(__name__)

STEM_CONV = "conv1"
KEPT_OUT: tuple[str, ...] = ("layer1",)  # left out of int8 (measured: its error)
# the verdict's name of the int8 graph with ``KEPT_OUT`` left out (``select.Candidate``)
INT8_VARIANT = "int8-" + "".join(f"{prefix}fp32" for prefix in KEPT_OUT)
CALIBRATION_BATCH = 16


def convolution_names() -> list[str]:
    """Every convolution of the walked ResNet-50, in the walk's order."""
    names = [STEM_CONV]
    for stage, blocks in enumerate(STAGES, start=1):
        for block in range(blocks):
            name = f"layer{stage}.{block}"
            names += [f"{name}.conv1", f"{name}.conv2", f"{name}.conv3"]
            if block == 0:  # every stage's first block changes width: a downsample
                names.append(f"{name}.downsample.0")
    return names


def quantized_names(kept_out: Sequence[str] = KEPT_OUT) -> list[str]:
    """The convolutions that run in int8: all but the stem and those under ``kept_out``
    (prefixes of whole names or of name parts, e.g. "layer1" or "layer1.0")."""

    def kept(name: str) -> bool:
        return any(name == p or name.startswith(f"{p}.") for p in kept_out)

    return [n for n in convolution_names() if n != STEM_CONV and not kept(n)]


class TappingEmitter(OpenVinoEmitter):
    """The fp32 graph with the inputs of the ``names`` convolutions kept for more outputs."""

    def __init__(self, names: Collection[str]) -> None:
        super().__init__()
        self.names = set(names)
        self.taps: dict[str, Any] = {}

    def conv(
        self, x: Any, name: str, weight: np.ndarray, bias: np.ndarray, stride: int, output: str
    ) -> Any:
        if name in self.names:
            self.taps[name] = x
        return super().conv(x, name, weight, bias, stride, output)


class QuantizingEmitter(OpenVinoEmitter):
    """The graph with FakeQuantize on the input (u8 over 0..``ranges[name]``) and the
    weights (i8, per output channel, symmetric) of each convolution named in ``ranges``."""

    def __init__(self, ranges: Mapping[str, float]) -> None:
        super().__init__()
        self.ranges = dict(ranges)

    def conv(
        self, x: Any, name: str, weight: np.ndarray, bias: np.ndarray, stride: int, output: str
    ) -> Any:
        if name not in self.ranges:
            return super().conv(x, name, weight, bias, stride, output)
        op, hi = self.op, np.float32(self.ranges[name])
        x = op.fake_quantize(x, np.float32(0), hi, np.float32(0), hi, 256)
        w = np.ascontiguousarray(weight, np.float32)
        m = np.maximum(np.abs(w).reshape(len(w), -1).max(1), 1e-12).astype(np.float32)
        m = m.reshape(-1, 1, 1, 1)
        kernel = op.fake_quantize(self._constant(w, f"{name}.w"), -m, m, -m, m, 255)
        pad = [weight.shape[-1] // 2] * 2
        y = op.convolution(x, kernel, [stride] * 2, pad, pad, [1, 1])
        shift = self._constant(bias.reshape(1, -1, 1, 1), f"{name}.b")
        return self._named(op.add(y, shift), output)


def _walked_model(card: ModelCard, emit: OpenVinoEmitter, taps: Sequence[str] = ()) -> Any:
    """The walked ``ov.Model``; with ``taps`` (a ``TappingEmitter``'s names), their
    inputs as more outputs after the three usual ones, in that order."""
    prep = card.preprocessing
    try:
        done = walk(resnet50_state(card), prep.channels, prep.size, emit, consume=True)
    except ValueError as exc:
        raise RuntimeUnavailable(f"{card.weights_path}: cannot export ({exc})") from exc
    extra = [emit.taps[name] for name in taps] if isinstance(emit, TappingEmitter) else []
    outputs = [done.logits, done.features, done.activations, *extra]
    return emit.ov.Model(outputs, [emit.parameter], "xraydesk-resnet50")


def int8_model(card: ModelCard, ranges: Mapping[str, float]) -> Any:
    """The ``ov.Model`` of the card's checked weights with the ``ranges`` convolutions in
    int8 (outputs as ``openvino_graph.resnet50_model``'s)."""
    return _walked_model(card, QuantizingEmitter(ranges))


def write_int8_ir(card: ModelCard, ranges: Mapping[str, float], xml: Path) -> None:
    """Save ``int8_model`` as ``xml`` and its ``.bin``, atomically (``save_ir``)."""
    try:
        model = int8_model(card, ranges)
    except ImportError as exc:
        raise RuntimeUnavailable("OpenVINO is not installed") from exc
    try:
        save_ir(model, xml)
    except (OSError, RuntimeError) as exc:
        raise RuntimeUnavailable(f"{xml}: cannot save the OpenVINO model ({exc})") from exc


def calibration_ranges(
    card: ModelCard, films: np.ndarray, names: Sequence[str] | None = None
) -> dict[str, float]:
    """The largest input value of each ``names`` convolution (default: ``quantized_names``)
    over ``films`` (preprocessed, N x C x H x W), run at fp32: the int8 graph's ranges."""
    wanted = list(quantized_names() if names is None else names)
    if len(films) == 0:
        raise ValueError("no calibration films")
    unknown = sorted(set(wanted) - set(convolution_names()))
    if unknown:
        raise ValueError(f"no such convolution: {unknown[:5]}")
    tapped = TappingEmitter(wanted)
    model = _walked_model(card, tapped, wanted)
    compiled = tapped.ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    top = dict.fromkeys(wanted, 0.0)
    for start in range(0, len(films), CALIBRATION_BATCH):
        batch = np.ascontiguousarray(films[start : start + CALIBRATION_BATCH], np.float32)
        values = list(request.infer({0: batch}).values())[3:]
        for name, value in zip(wanted, values, strict=True):
            top[name] = max(top[name], float(np.max(value)))
    return top


def _fp32_key(card: ModelCard) -> str:
    prep = card.preprocessing
    return graph_key(card.weights_sha256, prep.channels, prep.size)


def int8_graph_path(card: ModelCard, ranges: Int8Ranges) -> Path:
    """Where the card's int8 IR for ``ranges`` is cached: the fp32 graph's key plus the
    ranges' digest."""
    return runtime_cache_dir() / f"{_fp32_key(card)}{INT8_TAG}{ranges.digest}.xml"


def refusal_record(graph: Path) -> Path:
    """The file whose presence says the int8 ``graph`` was built here and refused on the
    probes (``record_refusal``). The refusal is this machine's and this OpenVINO's (int8
    kernels differ between CPUs and releases), so it lives beside the graph in the
    runtime cache, goes with the graph's key and is dropped when other ranges ship for
    the weights or another OpenVINO runs them."""
    return graph.with_name(f"{graph.stem}.refused")


def _openvino_stamp() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"openvino {version('openvino')}"
    except PackageNotFoundError:
        return "openvino unknown"


def record_refusal(graph: Path, reason: str) -> None:
    """Remember that ``graph`` missed its probe check here, and why."""
    refusal_record(graph).write_text(f"{_openvino_stamp()}\n{reason}\n", encoding="utf-8")


def recorded_refusal(graph: Path) -> str | None:
    """Why ``graph`` was refused here, or None: never refused, or refused under another
    OpenVINO (that record is deleted, so the graph is built and checked again)."""
    record = refusal_record(graph)
    try:
        stamp, _, reason = record.read_text(encoding="utf-8").partition("\n")
    except OSError:
        return None
    if stamp != _openvino_stamp():
        record.unlink(missing_ok=True)
        return None
    return reason.strip() or "no reason recorded"


def cached_int8_graph(card: ModelCard, ranges: Int8Ranges) -> ExportedGraph:
    """The card's int8 OpenVINO IR for ``ranges`` from the runtime cache (``export``),
    built first if it is not there. Its name is the fp32 graph's key plus the ranges'
    digest: new ranges for the same weights never reuse an old graph, which is deleted
    when the new one is written (``prune_cache`` deletes it with its weights' graphs)."""
    from xraydesk.model.weights import verified_weights

    key, path = _fp32_key(card), int8_graph_path(card, ranges)
    if path.is_file():
        verified_weights(card)
        return ExportedGraph(path, created=False)
    write_int8_ir(card, ranges.as_dict(), path)
    for old in runtime_cache_dir().glob(f"{key}{INT8_TAG}*"):
        if old.name.split(".")[0] != path.stem:  # a graph of other ranges: never used again
            old.unlink(missing_ok=True)
    log.info("exported %s", path)
    prune_cache(keep={key})
    return ExportedGraph(path, created=True)


__all__ = [
    "INT8_VARIANT",
    "KEPT_OUT",
    "STEM_CONV",
    "QuantizingEmitter",
    "TappingEmitter",
    "cached_int8_graph",
    "calibration_ranges",
    "convolution_names",
    "int8_graph_path",
    "int8_model",
    "quantized_names",
    "record_refusal",
    "recorded_refusal",
    "refusal_record",
    "write_int8_ir",
]
