"""Choosing the runtime a model runs on, by what is installed and what the CPU has.

On CUDA and Apple MPS: torch. On a CPU, automatically, the first of these that is
installed, that the CPU runs natively and whose shipped verdict for the model's exact
weights passed the faithfulness bar (``faithful``): OpenVINO bf16 (CPUs with AVX-512
BF16 or AMX), OpenVINO fp32, ONNX Runtime fp32; otherwise torch as before. int8 is
measured by the benchmark but never chosen: it needs calibration images at export time
and, measured, moves probabilities past the bar.

That automatic choice is made only when asked for (``auto``): the default is torch
(``DEFAULT_RUNTIME``). The faithful runtime for chest-3class is OpenVINO at fp32 (its
bf16 missed the bar by a hair), which is faster than torch for one image but slower than
torch's bf16 batch engine on CPUs with native bf16; until the choice can depend on the
use (viewer or batch), the exported runtimes are opt-in.

``XRAYDESK_RUNTIME=auto|torch|onnxruntime|openvino`` (or the caller's ``preference``)
overrides the default; a named runtime that is missing or fails is an error, never a
silent fallback. ``XRAYDESK_PRECISION=fp32`` keeps every runtime at fp32.

Without torch (the light build) there is no torch to compare with or fall back to: the
default becomes ``auto``, and a model whose reduced precision has no passing verdict runs
its exported graph at fp32, which is torch's fp32 to about 1e-6 (the graph builder is
checked against torch in the tests).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice
from xraydesk.optional import FULL_BUILD_HINT, has_torch
from xraydesk.runtime import onnxruntime_backend, openvino_backend
from xraydesk.runtime.backend import Backend, Precision, RuntimeUnavailable
from xraydesk.runtime.export import exported_graph, graph_path
from xraydesk.runtime.faithful import shipped_verdict
from xraydesk.runtime.names import RUNTIME_CHOICES, RUNTIME_ENV

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)
DEFAULT_RUNTIME = "torch"  # see the module's docstring: the exported runtimes are opt-in


@dataclass(frozen=True)
class Candidate:
    runtime: str
    precision: Precision


def runtime_preference(preference: str | None = None) -> str:
    """The caller's choice, else ``XRAYDESK_RUNTIME``, else torch; refuses unknown names."""
    default = DEFAULT_RUNTIME if has_torch() else "auto"
    value = (preference or os.environ.get(RUNTIME_ENV) or default).strip().lower()
    if value not in RUNTIME_CHOICES:
        raise RuntimeUnavailable(
            f"unknown runtime {value!r} (from {'the caller' if preference else RUNTIME_ENV}): "
            f"choose one of {', '.join(RUNTIME_CHOICES)}"
        )
    return value


def installed_runtimes() -> list[str]:
    """The runtimes importable here, without importing them."""
    found = ["torch"] if has_torch() else []
    if onnxruntime_backend.installed():
        found.append("onnxruntime")
    if openvino_backend.installed():
        found.append("openvino")
    return found


def _reduced_precision_allowed() -> bool:
    return os.environ.get("XRAYDESK_PRECISION", "auto").lower() != "fp32"


def cpu_candidates(runtime: str = "auto") -> list[Candidate]:
    """The exported runtimes and precisions this CPU runs natively, fastest first."""
    found = installed_runtimes()
    out: list[Candidate] = []
    if "openvino" in found and runtime in ("auto", "openvino"):
        if _reduced_precision_allowed() and openvino_backend.cpu_has_bf16():
            out.append(Candidate("openvino", "bf16"))
        out.append(Candidate("openvino", "fp32"))
    if "onnxruntime" in found and runtime in ("auto", "onnxruntime"):
        out.append(Candidate("onnxruntime", "fp32"))
    return out


def build_backend(
    candidate: Candidate, card: ModelCard, network: nn.Module | None = None, threads: int = 0
) -> Backend:
    """The exported backend of the card's weights, exporting the graph at first use.

    Every new graph is checked once on the probes against the torch network of the same
    weights (``network``, else loaded here where torch is installed); the light build has
    no torch to check against, and relies on the graph builder's tests.
    """
    prep = card.preprocessing
    graph = exported_graph(card)
    marker = graph_path(card.weights_sha256, prep.channels, prep.size, suffix=".checked")
    cls = {"onnxruntime": onnxruntime_backend.OnnxRuntimeBackend}.get(
        candidate.runtime, openvino_backend.OpenVinoBackend
    )
    try:
        if (graph.created or not marker.is_file()) and (network is not None or has_torch()):
            from xraydesk.model.storage import load_network
            from xraydesk.runtime.probes import check_graph

            reference = network if network is not None else load_network(card)
            check_graph(cls(graph.path, "fp32", threads), reference, prep)
            marker.write_text(f"{candidate.runtime}\n", encoding="utf-8")
        return cls(graph.path, candidate.precision, threads)
    except RuntimeUnavailable:
        graph.path.unlink(missing_ok=True)  # never reused: the next start exports again
        marker.unlink(missing_ok=True)
        raise


def select_backend(
    card: ModelCard,
    device: DeviceChoice,
    preference: str | None = None,
    network: nn.Module | None = None,
) -> Backend:
    """The backend the classifier runs on (see the module's docstring for the rule).

    ``network``: the card's weights already loaded in torch (``load_network``), used by
    the torch backend and to check a new export; loaded here when torch needs it.
    """
    choice = runtime_preference(preference)
    torch_here = has_torch()
    if choice == "torch" or (
        choice == "auto" and torch_here and (device.type != "cpu" or not _any_passed(card))
    ):
        if not torch_here:
            raise RuntimeUnavailable(f"runtime torch: {FULL_BUILD_HINT}")
        return _torch_backend(card, device, network)
    if device.type != "cpu":
        raise RuntimeUnavailable(
            f"runtime {choice} runs on the CPU, but this model was asked to run on "
            f"{device.label}: use --device cpu, or {RUNTIME_ENV}=torch"
        )
    candidates = cpu_candidates(choice)
    if not candidates:
        package = choice if choice != "auto" else "onnxruntime"
        raise RuntimeUnavailable(
            f"runtime {choice} is not installed: pip install 'xraydesk[{package}]'"
        )
    passed = [c for c in candidates if _passed(card, c)]
    if choice != "auto":
        return build_backend((passed or candidates[-1:])[0], card, network)
    if not torch_here:  # nothing to fall back to: fp32 graphs are torch's fp32
        passed += [c for c in candidates if c.precision == "fp32" and c not in passed]
    for candidate in passed:
        try:
            return build_backend(candidate, card, network)
        except RuntimeUnavailable as exc:
            if not torch_here and candidate is passed[-1]:
                raise
            log.warning("%s %s not used for %s: %s", *_names(candidate), card.label, exc)
    return _torch_backend(card, device, network)


def _torch_backend(card: ModelCard, device: DeviceChoice, network: nn.Module | None) -> Backend:
    from xraydesk.model.storage import load_network
    from xraydesk.runtime.torch_backend import TorchBackend

    return TorchBackend(network if network is not None else load_network(card), device)


def _any_passed(card: ModelCard) -> bool:
    return any(_passed(card, c) for c in cpu_candidates())


def _passed(card: ModelCard, candidate: Candidate) -> bool:
    verdict = shipped_verdict(card.weights_sha256, candidate.runtime, candidate.precision)
    return verdict is not None and verdict.passed


def _names(candidate: Candidate) -> tuple[str, str]:
    return candidate.runtime, candidate.precision
