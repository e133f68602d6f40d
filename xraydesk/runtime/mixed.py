"""OpenVINO bf16 for most of the network, fp32 for the part whose rounding costs the most
("mixed"): the stem (the first convolution, on the raw intensities, and the max pool).

Where the error comes from (measured on 320 validation images of chest-3class, Intel Xeon
family 6 model 207 with AMX; tests/benchmarks/bench_bf16_sources.py): keeping the stem at
fp32 brings the largest logit-difference error from 0.040 to 0.022 (E, the largest logit
error, from 0.0205 to 0.0128); the linear head, the last block or the whole last stage at
fp32 change it by under 2 %. Rounding the input alone to bf16 in an otherwise fp32 graph
costs 0.012 (likely because the first convolution takes differences of neighbouring
raw intensities, small against the intensities themselves, so their rounding weighs most
there; the zero-sum kernels of tests/runtime/test_mixed.py show the same). On the
whole test split the mixed graph is faithful by the bar on its own (max 0.0074, where
plain bf16's 0.0204 missed it). The stem is about 1 % of the network's arithmetic.

Why a split graph and not a per-node precision: OpenVINO's CPU plugin keeps a node at
fp32 when its ``disable_fp16_compression`` runtime attribute is set (C++
``ov::disable_fp16_compression``), but OpenVINO 2026.4's Python API cannot make that
attribute: a string entry of the same key in ``node.get_rt_info()``, or the attribute
written into an IR file, is ignored (measured: the runtime model still reports the marked
convolutions as bf16, and the outputs are bit-identical to plain bf16). So the exported
graph (OpenVINO IR, ``export``; an ONNX file works too) is cut at a named tensor
(``cut``): each part is compiled with its own inference precision and a batch runs
through both in turn. Each part's precision is then what its
compile asked for, which the tests read back from OpenVINO's runtime model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk.optional import float32_array
from xraydesk.runtime import resnet_walk
from xraydesk.runtime.backend import Backend, Outputs, Precision, RuntimeUnavailable
from xraydesk.runtime.names import OUTPUT_NAMES
from xraydesk.runtime.openvino_backend import (
    CHUNKS_PER_STREAM,
    RequestPool,
    compile_graph,
    core,
    import_openvino,
    run_split,
    streams,
)
from xraydesk.runtime.openvino_graph import save_ir

log = logging.getLogger(__name__)

# Cut points of the exported ResNet-50 (``resnet_walk``'s node names, the same in its ONNX
# and OpenVINO forms): after the stem (the shipped mixed path: the stem at fp32), before the
# head, the last block, the last stage (kept for the measurement of where the error comes
# from).
STEM = resnet_walk.STEM  # "maxpool"
HEAD = OUTPUT_NAMES[1]  # "features": the pooled input of the linear head
CUTS = {"stem": STEM, "head": HEAD, "layer4.2": "layer4.1.out", "layer4": "layer3.5.out"}


def split_graph(graph: Path | str, cut: str) -> tuple[Any, Any]:
    """The graph's two ``ov.Model``s: input -> ``cut`` (plus any output computed before
    it), and ``cut`` -> the outputs after it. Raises ``RuntimeUnavailable`` for an unknown
    cut."""
    ov = import_openvino()  # telemetry off (``openvino_backend``)
    body = core().read_model(str(graph))
    tail = body.clone()
    cut_op = _op(body, cut, graph)
    upstream = _ancestors(cut_op)
    before = [r for r in body.get_results() if _name(r.input_value(0)) in upstream]
    body_outs = [cut_op.output(0)] + [
        r.input_value(0) for r in before if _name(r.input_value(0)) != cut
    ]
    body_model = ov.Model(body_outs, body.get_parameters(), "xraydesk-body")
    tail_cut = _op(tail, cut, graph).output(0)
    param = ov.opset13.parameter(tail_cut.get_partial_shape(), tail_cut.get_element_type(), cut)
    for target in list(tail_cut.get_target_inputs()):
        target.replace_source_output(param.output(0))
    after = [r for r in tail.get_results() if _name(r.input_value(0)) not in upstream]
    tail_model = ov.Model(after, [param], "xraydesk-tail")
    return body_model, tail_model


PARTS_DIR = "parts"


def parts_folder(graph: Path | str) -> Path:
    """Where the parts of ``graph`` are saved: named by the graph's file name (its form
    too: ONNX or IR), size and time, so a graph written again (another file at the same
    path) never meets the parts of the old one. ``export.prune_cache`` removes those that
    name no graph file as it now is (deleted, or written again)."""
    graph = Path(graph)
    stat = graph.stat()
    form = graph.suffix.lstrip(".")
    return graph.parent / PARTS_DIR / f"{graph.stem}-{form}-{stat.st_size}-{stat.st_mtime_ns}"


def split_parts(graph: Path | str, cut: str) -> tuple[Any, Any]:
    """The graph's two parts (``split_graph``) as OpenVINO IR files saved beside it, made
    at the first use; the ``ov.Model``s themselves where they cannot be saved.

    Why files: reading and cutting the graph cost about 0.3 s in every new process when it
    was ONNX (0.04 s from the OpenVINO IR that ``export`` now writes for OpenVINO), and
    OpenVINO's compiled cache (``openvino_backend.compiled_cache_dir``) only works for
    files; a saved part is compiled from that cache in about 0.05 s (Intel Xeon family 6
    model 207, 2 cores). The ``.bin`` is moved into place before its ``.xml``, so a
    process that finds the ``.xml`` finds a whole part."""
    try:
        folder = parts_folder(graph)
    except OSError as exc:
        raise RuntimeUnavailable(f"{graph}: cannot read the graph ({exc})") from exc
    files = [folder / f"{cut}-{side}.xml" for side in ("body", "tail")]
    if all(f.is_file() for f in files):
        return str(files[0]), str(files[1])
    models = split_graph(graph, cut)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for model, xml in zip(models, files, strict=True):
            save_ir(model, xml)
    except (OSError, RuntimeError) as exc:  # read-only folder, full disk: run from memory
        log.info("graph parts kept in memory (%s: %s)", type(exc).__name__, exc)
        return models
    return str(files[0]), str(files[1])


def _name(output: Any) -> str:
    return output.get_node().get_friendly_name()


def _op(model: Any, name: str, graph: Path | str) -> Any:
    for op in model.get_ordered_ops():
        if op.get_friendly_name() == name:
            return op
    raise RuntimeUnavailable(f"{graph}: no node {name!r} to split the graph at")


def _ancestors(node: Any) -> set[str]:
    """The names of ``node`` and of every node it depends on."""
    seen: set[str] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if n.get_friendly_name() in seen:
            continue
        seen.add(n.get_friendly_name())
        todo.extend(v.get_node() for v in n.input_values())
    return seen


class MixedOpenVinoBackend(Backend):
    """The graph's part before ``cut`` at ``body`` precision, the rest at ``tail``
    precision (the shipped path: the stem at fp32, the rest at bf16); thread-safe like
    ``OpenVinoBackend`` (a request per call), and split between streams in throughput
    mode."""

    runtime = "openvino"

    def __init__(
        self,
        graph: Path,
        cut: str = STEM,
        threads: int = 0,
        mode: str = "latency",
        body: Precision = "fp32",
        tail: Precision = "bf16",
        per_stream: int = CHUNKS_PER_STREAM,
    ) -> None:
        body_model, tail_model = split_parts(graph, cut)
        self.body = compile_graph(body_model, body, mode, threads, graph)
        self.tail = compile_graph(tail_model, tail, mode, threads, graph)
        self.cut = cut
        self.graph = graph
        self.threads = threads
        self.mode = mode
        self.precisions: tuple[Precision, Precision] = (body, tail)
        self.precision: Precision = "bf16" if "bf16" in self.precisions else body
        self.streams = streams(self.body)
        self.per_stream = per_stream  # slices of a batch per stream (``run_split``)
        self._requests = (RequestPool(self.body), RequestPool(self.tail))

    @property
    def label(self) -> str:
        """E.g. "OpenVINO, CPU, bf16, fp32 stem"."""
        part = next((k for k, v in CUTS.items() if v == self.cut), self.cut)
        kept = f"fp32 {part}" if self.precisions[0] == "fp32" else f"fp32 after {part}"
        return f"{super().label}, {kept}"

    def in_mode(self, mode: str) -> Backend:
        """The same graph, cut, precisions and threads compiled for ``mode`` (its parts
        read from the same saved files); itself if it is."""
        if mode == self.mode:
            return self
        return MixedOpenVinoBackend(
            self.graph, self.cut, self.threads, mode, *self.precisions, self.per_stream
        )

    def run(self, batch: np.ndarray, activations: bool = True) -> Outputs:
        batch = float32_array(batch)
        return run_split(self._run_part, batch, self.streams, activations, self.per_stream)

    def _run_part(self, batch: np.ndarray, activations: bool) -> Outputs:
        first = _named(self._requests[0].infer({0: batch}))
        second = _named(self._requests[1].infer({0: first[self.cut]}))
        both = {**first, **second}
        logits, features, stage = (both[name] for name in OUTPUT_NAMES)
        return Outputs(logits, features, stage if activations else None)


def _named(result: dict[Any, np.ndarray]) -> dict[str, np.ndarray]:
    """An inference's outputs by tensor name."""
    return {name: value for port, value in result.items() for name in port.get_names()}
