"""Exporting a model's network to an ONNX graph, once, into a cache keyed by its weights.

The graph is made from the network torch loaded from the model's safetensors file (whose
sha256 ``model.storage.load_network`` checked against the card), at its first use on a
CPU. The file name holds that sha256, the export version and the input shape: weights
that change (a retrained or replaced model) get a new name, so a graph of old weights is
never used for new ones, and a change to how graphs are made (``EXPORT_VERSION``) makes
every old one unused. The file is written atomically (``files.write_atomic``): a process
killed mid-export leaves no half graph that a later start would load.

Nothing is ever shipped exported: the cache is built on the user's machine from the
weights that ship.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from xraydesk import paths
from xraydesk.files import write_atomic
from xraydesk.runtime.backend import RuntimeUnavailable
from xraydesk.runtime.graph import OUTPUT_NAMES, ThreeOutputs

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # raise when the graph's form changes: every cached graph is then unused
OPSET = 17
CACHE_ENV = "XRAYDESK_RUNTIME_CACHE"  # replaces the cache folder (tests share one per session)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ExportedGraph:
    path: Path
    created: bool  # exported by this call (False: found in the cache)


def runtime_cache_dir() -> Path:
    """Where exported graphs live: ``<user data>/cache/runtime`` unless ``CACHE_ENV`` says."""
    override = os.environ.get(CACHE_ENV)
    path = Path(override) if override else paths.cache_dir() / "runtime"
    path.mkdir(parents=True, exist_ok=True)
    return path


def graph_key(weights_sha256: str, channels: int, size: int) -> str:
    """The cache name of a graph: weights, export version and input shape."""
    if not _SHA256.match(weights_sha256 or ""):
        raise RuntimeUnavailable(
            f"cannot export a network without the sha256 of its weights (got {weights_sha256!r})"
        )
    return f"{weights_sha256}-x{EXPORT_VERSION}-c{channels}s{size}"


def graph_path(weights_sha256: str, channels: int, size: int, suffix: str = ".onnx") -> Path:
    return runtime_cache_dir() / f"{graph_key(weights_sha256, channels, size)}{suffix}"


def exported_graph(
    network: nn.Module, weights_sha256: str, channels: int, size: int
) -> ExportedGraph:
    """The network's ONNX graph from the cache, exported first if it is not there.

    ``network`` must hold exactly the weights whose sha256 is given (the classifier's
    network as ``load_network`` returned it). The batch dimension is dynamic.
    """
    path = graph_path(weights_sha256, channels, size)
    if path.is_file():
        return ExportedGraph(path, created=False)
    write_atomic(path, onnx_bytes(network, channels, size))
    log.info("exported %s", path)
    return ExportedGraph(path, created=True)


def onnx_bytes(network: nn.Module, channels: int, size: int) -> bytes:
    """The float32 ONNX graph of ``network`` on the CPU with outputs ``OUTPUT_NAMES``."""
    import copy

    try:
        import onnx  # noqa: F401 - the exporter needs it; say so plainly when it is missing
    except ImportError as exc:
        raise RuntimeUnavailable(
            "exporting a model for a faster CPU runtime needs the 'onnx' package"
        ) from exc
    module = ThreeOutputs(copy.deepcopy(network).to("cpu", torch.float32).eval())
    dynamic = {name: {0: "batch"} for name in ("input", *OUTPUT_NAMES)}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of torch.export's, which needs
        # onnxscript; this graph (convolutions, pooling, one linear layer) is what the
        # older exporter has always handled, and the probe check verifies every export.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, channels, size, size),),
            buffer,
            dynamo=False,
            input_names=["input"],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    return buffer.getvalue()
