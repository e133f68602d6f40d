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
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from torch import nn

from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice
from xraydesk.runtime import onnxruntime_backend, openvino_backend
from xraydesk.runtime.backend import Backend, Precision, RuntimeUnavailable
from xraydesk.runtime.export import exported_graph, graph_path
from xraydesk.runtime.faithful import shipped_verdict
from xraydesk.runtime.names import RUNTIME_CHOICES, RUNTIME_ENV
from xraydesk.runtime.probes import check_graph
from xraydesk.runtime.torch_backend import TorchBackend

log = logging.getLogger(__name__)
DEFAULT_RUNTIME = "torch"  # see the module's docstring: the exported runtimes are opt-in


@dataclass(frozen=True)
class Candidate:
    runtime: str
    precision: Precision


def runtime_preference(preference: str | None = None) -> str:
    """The caller's choice, else ``XRAYDESK_RUNTIME``, else torch; refuses unknown names."""
    value = (preference or os.environ.get(RUNTIME_ENV) or DEFAULT_RUNTIME).strip().lower()
    if value not in RUNTIME_CHOICES:
        raise RuntimeUnavailable(
            f"unknown runtime {value!r} (from {'the caller' if preference else RUNTIME_ENV}): "
            f"choose one of {', '.join(RUNTIME_CHOICES)}"
        )
    return value


def installed_runtimes() -> list[str]:
    """The runtimes importable here (torch always), without importing them."""
    found = ["torch"]
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
    candidate: Candidate, network: nn.Module, card: ModelCard, threads: int = 0
) -> Backend:
    """The exported backend of ``network`` (whose weights are the card's), exporting the
    graph at first use and checking every graph once on the probes."""
    prep = card.preprocessing
    graph = exported_graph(network, card.weights_sha256, prep.channels, prep.size)
    marker = graph_path(card.weights_sha256, prep.channels, prep.size, suffix=".checked")
    cls = {"onnxruntime": onnxruntime_backend.OnnxRuntimeBackend}.get(
        candidate.runtime, openvino_backend.OpenVinoBackend
    )
    try:
        if graph.created or not marker.is_file():
            check_graph(cls(graph.path, "fp32", threads), network, prep)
            marker.write_text(f"{candidate.runtime}\n", encoding="utf-8")
        return cls(graph.path, candidate.precision, threads)
    except RuntimeUnavailable:
        graph.path.unlink(missing_ok=True)  # never reused: the next start exports again
        marker.unlink(missing_ok=True)
        raise


def select_backend(
    network: nn.Module,
    card: ModelCard,
    device: DeviceChoice,
    preference: str | None = None,
    verified_weights: bool = True,
) -> Backend:
    """The backend the classifier runs on (see the module's docstring for the rule).

    ``verified_weights``: the network holds exactly the weights of the card's file (as
    ``Classifier.load`` guarantees); otherwise only torch can run it.
    """
    choice = runtime_preference(preference)
    if choice == "torch" or (choice == "auto" and (device.type != "cpu" or not verified_weights)):
        return TorchBackend(network, device)
    if device.type != "cpu":
        raise RuntimeUnavailable(
            f"runtime {choice} runs on the CPU, but this model was asked to run on "
            f"{device.label}: use --device cpu, or {RUNTIME_ENV}=torch"
        )
    if not verified_weights:
        raise RuntimeUnavailable(
            f"runtime {choice} needs a model loaded from its weights file (sha256 checked)"
        )
    if choice != "auto":
        candidates = cpu_candidates(choice)
        if not candidates:
            raise RuntimeUnavailable(
                f"runtime {choice} is not installed: pip install 'xraydesk[{choice}]'"
            )
        passed = [c for c in candidates if _passed(card, c)]
        return build_backend((passed or candidates[-1:])[0], network, card)
    for candidate in cpu_candidates():
        if not _passed(card, candidate):
            continue
        try:
            return build_backend(candidate, network, card)
        except RuntimeUnavailable as exc:
            log.warning("%s %s not used for %s: %s", *_names(candidate), card.label, exc)
    return TorchBackend(network, device)


def _passed(card: ModelCard, candidate: Candidate) -> bool:
    verdict = shipped_verdict(card.weights_sha256, candidate.runtime, candidate.precision)
    return verdict is not None and verdict.passed


def _names(candidate: Candidate) -> tuple[str, str]:
    return candidate.runtime, candidate.precision
