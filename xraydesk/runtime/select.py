"""Choosing the runtime a model runs on, by what is installed and what the CPU has.

On CUDA and Apple MPS: torch. On a CPU (``auto``, the default in every build): the fastest
runtime and precision that was measured faithful to fp32 torch for the model's exact
weights (``faithful``: the verdicts shipped in ``verdicts.json``), in this order:

0. OpenVINO int8 (``int8_graph``: every convolution but the stem and the first stage,
   ``layer1``, in u8 x i8, those two at fp32; verdict "int8-layer1fp32"), on CPUs with
   int8 dot products (AVX-512 VNNI or AVX-VNNI), only where calibration ranges ship for the weights
   (``int8_ranges.json``, refused whole when malformed) and its verdict passed; its
   graph is exported at first use and cached under a name that includes the ranges, and
   one that misses its probe check is deleted and the refusal recorded beside it, so the
   next start goes straight to the next candidate (the fp32 graph stays);
1. OpenVINO bf16, on CPUs with native bf16 (AVX-512 BF16 or AMX);
2. OpenVINO bf16 with its stem (the first convolution, on the raw intensities, and the
   max pool) at fp32 (``mixed``): where bf16's error mostly comes from, for about 1 % of
   the arithmetic;
3. torch bf16 (the batch engine's folded bf16 network, the viewer's autocast);
4. the same mixed graph with the rows whose probabilities its rounding could move past
   half the bar run again at fp32 (``recheck``: a worst-case bound from the largest
   logit-difference error measured on the validation split);
5. OpenVINO fp32, then ONNX Runtime fp32 (the exported graph equals torch's fp32 to about
   1e-6; faster than torch's fp32 for one image and in batches);
6. torch at fp32 where its bf16 was measured unfaithful, else at the device's precision.

torch named explicitly (``--runtime torch``) also runs at fp32 on a CPU where its bf16 was
measured unfaithful for the model.

Why this order: reduced precision is faster than fp32 on a CPU that has it natively, but
is used only where its verdict says it stays within the bar for the model's weights; a
recheck costs a second pass over the uncertain rows, so the plain bf16 runtimes come
first; the exported fp32 graphs beat torch's fp32 and are the same numbers.

Measured on chest-3class (its plain bf16 misses the bar: max 0.0204 against 0.02) on an
Intel Xeon (family 6 model 207, AMX, 2 cores, loaded), whole test split of 2,778 images:
the mixed graph passes alone (same top 99.93 %, mean 0.00033, max 0.0074), so it runs
with no row run again, at the speed of plain bf16 within the noise of a loaded machine;
with the recheck (the next step) it ran 7.9 % of the rows again (max 0.0056), where the
bound before issue 28 ran 35 % of plain bf16's rows again (0.25-0.57x plain bf16).
tests/benchmarks/bench_bf16_sources.py and bench_runtime.py print the figures. Each step
only where it is installed (``runtime.registry``) and the CPU runs it natively. A model
without any verdict (your own) runs in torch as the device says, as before the exported
runtimes. Which step each bundled model ends on, and the measured speeds and errors
behind the verdicts, are in the output of tests/benchmarks/bench_runtime.py and in
tests/benchmarks/README.md. int8: ONNX Runtime's QDQ graph (stem included) is measured by
the benchmark but never chosen (it moves probabilities past the bar); OpenVINO's int8
with the stem and ``layer1`` left out passed the bar alone on chest-3class's whole test
split at 1.12x plain bf16 on an AMD EPYC Zen 4 without AMX, where plain bf16 already runs
at the CPU's bf16 limit (tests/benchmarks/bench_int8.py), so it comes first where its
ranges and verdict ship. The ranges come from training films, which do not ship: the
benchmark computes them (``bench_runtime.py --write-verdicts``) with the verdict.

``XRAYDESK_RUNTIME=auto|torch|onnxruntime|openvino`` (or the caller's ``preference``)
overrides the choice; a named runtime that is missing or fails is an error, never a
silent fallback, and an unknown name is an error listing the known ones.
``XRAYDESK_PRECISION=fp32`` (or the caller's ``precision``) keeps every runtime at fp32;
the variables are read through ``xraydesk.environment``.

Without torch (the light build) there is no torch to fall back to: a model whose reduced
precision has no passing verdict runs its exported graph at fp32, which is torch's fp32
to about 1e-6 (the graph builder is checked against torch in the tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xraydesk.environment import RUNTIME as RUNTIME_ENV
from xraydesk.environment import from_environ, reduced_precision_allowed
from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice, cpu_flags
from xraydesk.optional import has_torch
from xraydesk.runtime import openvino_backend, probes
from xraydesk.runtime.backend import Backend, Precision, RuntimeUnavailable
from xraydesk.runtime.export import checked_marker, exported_graph
from xraydesk.runtime.faithful import Faithfulness, shipped_verdict
from xraydesk.runtime.int8_graph import (
    INT8_VARIANT,
    int8_graph_path,
    record_refusal,
    recorded_refusal,
)
from xraydesk.runtime.int8_ranges import shipped_ranges
from xraydesk.runtime.recheck import RecheckedBackend
from xraydesk.runtime.registry import (
    AUTO,
    REGISTRY,
    available_runtimes,
    how_to_get,
    runtime_spec,
)

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)


class Int8Refused(RuntimeUnavailable):
    """The int8 graph built here missed its probe check (recorded: ``refusal_record``)."""


DEFAULT_RUNTIME = AUTO


@dataclass(frozen=True)
class Candidate:
    runtime: str
    precision: Precision
    recheck: bool = False  # uncertain rows run again at fp32 (``recheck``)
    mixed: bool = False  # the stem (first convolution, max pool) at fp32 (``mixed``)

    @property
    def measured_as(self) -> str:
        """The precision's name in the verdicts: "bf16"; "bf16-fp32stem" with the stem at
        fp32 (``mixed``); "+fp32" appended when uncertain rows run again at fp32; the int8
        graph's ``int8_graph.INT8_VARIANT`` (which convolutions it leaves out)."""
        if self.precision == "int8":
            return INT8_VARIANT
        name = f"{self.precision}-fp32stem" if self.mixed else self.precision
        return f"{name}+fp32" if self.recheck else name


def runtime_preference(preference: str | None = None) -> str:
    """The caller's choice, else ``XRAYDESK_RUNTIME``, else auto; an unknown name is an
    error listing the known ones (``runtime.registry``)."""
    source = "the caller" if preference else RUNTIME_ENV
    value = (preference or from_environ().runtime or DEFAULT_RUNTIME).strip().lower()
    if value != AUTO:
        runtime_spec(value, source)
    return value


def installed_runtimes() -> list[str]:
    """The runtimes importable here, without importing them."""
    return available_runtimes()


def cpu_candidates(runtime: str = "auto", precision: str | None = None) -> list[Candidate]:
    """The exported runtimes and precisions this CPU runs natively, fastest first
    (``precision`` "fp32": fp32 only; None: as ``XRAYDESK_PRECISION`` says)."""
    found = installed_runtimes()
    out: list[Candidate] = []
    if "openvino" in found and runtime in ("auto", "openvino"):
        if reduced_precision_allowed(precision) and cpu_has_vnni():
            out.append(Candidate("openvino", "int8"))
        if reduced_precision_allowed(precision) and openvino_backend.cpu_has_bf16():
            out.append(Candidate("openvino", "bf16"))
            out.append(Candidate("openvino", "bf16", mixed=True))
            out.append(Candidate("openvino", "bf16", recheck=True, mixed=True))
        out.append(Candidate("openvino", "fp32"))
    if "onnxruntime" in found and runtime in ("auto", "onnxruntime"):
        out.append(Candidate("onnxruntime", "fp32"))
    return out


def cpu_has_vnni() -> bool:
    """Whether the CPU has int8 dot products (AVX-512 VNNI or AVX-VNNI), which make the
    int8 graph faster than bf16; False where its flags cannot be read (not Linux)."""
    flags = cpu_flags()
    return bool(flags and {"avx512_vnni", "avx_vnni"} & flags)


def build_backend(
    candidate: Candidate,
    card: ModelCard,
    network: nn.Module | None = None,
    threads: int = 0,
    mode: str = "latency",
) -> Backend:
    """The exported backend of the card's weights, exporting the graph at first use.
    ``mode``: OpenVINO's "latency" (one image, the viewer) or "throughput" (batches).

    Every new graph is checked once on the probes (``runtime.probes``): against the fp32
    outputs saved in the card, with no torch; for a card made before those were saved,
    against the torch network of the same weights (``network``, else loaded here where
    torch is installed); without either, it relies on the graph builder's tests. The int8
    graph (``int8_graph``, from the card's weights and shipped ranges) differs from the
    probes' fp32 outputs by design: the fp32 graph of the same walk is checked as every
    graph is, and the int8 graph within ``probes.int8_tolerance``.
    """
    cls = runtime_spec(candidate.runtime).backend_class()  # an unknown name: an error
    ranges = None
    if candidate.precision == "int8":
        ranges = shipped_ranges(card.weights_sha256)
        if ranges is None:
            raise RuntimeUnavailable(f"{card.label}: no int8 calibration ranges for its weights")
        refused = recorded_refusal(int8_graph_path(card, ranges))
        if refused is not None:  # not built and refused again at every start
            raise RuntimeUnavailable(
                f"{card.label}: its int8 graph was refused on this machine: {refused}"
            )
    openvino = candidate.runtime == "openvino"
    # OpenVINO's own IR for OpenVINO (built with no onnx import, nothing parsed again)
    graph = exported_graph(card, "ir" if openvino else "onnx")
    marker = checked_marker(graph.path)
    options = {"mode": mode} if openvino else {}
    derived: list[Path] = []  # a graph made from the checked one (int8): removed with it

    def build() -> Backend:
        if ranges is not None:
            from xraydesk.runtime.int8_graph import cached_int8_graph

            int8 = cached_int8_graph(card, ranges)
            derived.extend((int8.path, int8.path.with_suffix(".bin")))
            backend = cls(int8.path, "int8", threads, **options)
            if int8.created:  # once, as every new graph: wrong ranges or scales refused
                tolerance = probes.int8_tolerance(ranges.probe_difference)
                try:
                    _check_new_graph(backend, card, network, tolerance)
                except RuntimeUnavailable as exc:
                    # The fp32 graph it was made from passed its own check: kept. The
                    # refusal is recorded so the next start goes to the next candidate.
                    for file in derived:
                        file.unlink(missing_ok=True)
                    record_refusal(int8.path, str(exc))
                    raise Int8Refused(str(exc)) from None
            return backend
        if candidate.mixed:
            from xraydesk.runtime.mixed import MixedOpenVinoBackend

            return MixedOpenVinoBackend(graph.path, threads=threads, mode=mode)
        return cls(graph.path, candidate.precision, threads, **options)

    def passed(checked: bool) -> None:  # its marker saves the check at the next start
        if checked:
            marker.write_text(f"{candidate.runtime}\n", encoding="utf-8")

    try:
        fresh = graph.created or not marker.is_file()
        same = candidate.precision == "fp32" and not candidate.mixed  # what the check runs
        if fresh and same:
            backend = build()
            passed(_check_new_graph(backend, card, network))
        else:
            # One compiled graph at a time, not the check beside the build: at once they
            # cut 0.4-0.6 s but raised the first classify's peak from 422 to 617 MB. The
            # check's compile is dropped after it, so it is not written to OpenVINO's
            # compiled cache, unless the recheck's exact fp32 backend compiles it again.
            once = {"cached": False} if openvino and not candidate.recheck else {}
            passed(
                fresh and _check_new_graph(cls(graph.path, "fp32", threads, **once), card, network)
            )
            backend = build()  # an int8 graph refused here leaves the checked fp32 graph
        if not candidate.recheck:
            return backend
        verdict = candidate_verdict(card, candidate)
        if verdict is None or verdict.logit_error is None:
            raise RuntimeUnavailable(f"{card.label}: no measured bf16 error to recheck against")
        return RecheckedBackend(
            backend,
            lambda in_mode: cls(
                graph.path, "fp32", threads, **({"mode": in_mode} if in_mode else {})
            ),
            card.temperature,
            verdict.logit_error,
        )
    except Int8Refused:  # the fp32 graph passed its check: kept, with its marker
        raise
    except RuntimeUnavailable:
        weights = [graph.path.with_suffix(".bin")] if openvino else []  # the IR's weights
        for file in (graph.path, *weights, marker, *derived):
            file.unlink(missing_ok=True)  # never reused: the next start exports again
        raise


def _check_new_graph(
    backend: Backend,
    card: ModelCard,
    network: nn.Module | None,
    tolerance: float = probes.TOLERANCE,
) -> bool:
    """Check a graph (at fp32, or the int8 graph with its own ``tolerance``) against the
    card's saved outputs, else against torch where it is here; False when there is nothing
    to check against. Raises ``RuntimeUnavailable``."""
    if card.reference_outputs is not None:
        probes.check_graph_against_card(
            backend, card.reference_outputs, card.preprocessing, tolerance
        )
        return True
    if network is None and not has_torch():
        return False
    from xraydesk.model.saving import load_network

    reference = network if network is not None else load_network(card)
    probes.check_graph(backend, reference, card.preprocessing, tolerance)
    return True


def select_backend(
    card: ModelCard,
    device: DeviceChoice,
    preference: str | None = None,
    network: nn.Module | None = None,
    threads: int = 0,
    precision: str | None = None,
    mode: str = "latency",
) -> Backend:
    """The backend the classifier runs on (see the module's docstring for the rule).

    ``network``: the card's weights already loaded in torch (``load_network``), used by
    the torch backend and to check a new export; loaded here when torch needs it.
    ``threads``: an exported runtime's thread count (0: every core; a Spark task gets
    its share); torch's is the process's own setting. ``precision``: "fp32" keeps the
    exported runtimes at fp32 (None: ``XRAYDESK_PRECISION``); torch's is ``device``'s.
    ``mode``: OpenVINO's performance hint, "latency" (the viewer) or "throughput" (the
    batch engine, see ``openvino_backend``); the choice of runtime does not depend on it.
    """
    choice = runtime_preference(preference)
    if choice == "torch" or (choice == "auto" and device.type != "cpu"):
        missing = REGISTRY["torch"].unavailable_reason()
        if missing:
            raise RuntimeUnavailable(missing)
        if device.type == "cpu" and _failed(card, Candidate("torch", "bf16")):
            device = device.at_fp32()  # its bf16 was measured unfaithful for this model
        return _torch_backend(card, device, network)
    if device.type != "cpu":
        raise RuntimeUnavailable(
            f"runtime {choice} runs on the CPU, but this model was asked to run on "
            f"{device.label}: use --device cpu, or {RUNTIME_ENV}=torch"
        )
    candidates = cpu_candidates(choice, precision)
    if choice != "auto":
        if not candidates:
            raise RuntimeUnavailable(
                runtime_spec(choice).unavailable_reason() or f"runtime {choice} cannot run here"
            )
        passed = [c for c in candidates if _usable(card, c)]
        return build_backend((passed or candidates[-1:])[0], card, network, threads, mode)
    order = auto_order(card, device, candidates)
    if not order:
        raise RuntimeUnavailable(
            f"no runtime is installed to run models on: {how_to_get(REGISTRY['onnxruntime'])}"
        )
    for candidate in order:
        if candidate.runtime == "torch":
            run_on = device if candidate.precision == device.precision else device.at_fp32()
            return _torch_backend(card, run_on, network)
        try:
            return build_backend(candidate, card, network, threads, mode)
        except RuntimeUnavailable as exc:
            if candidate is order[-1]:
                raise
            log.warning("%s %s not used for %s: %s", *_names(candidate), card.label, exc)
    raise AssertionError("unreachable: the last candidate returns or raises")


def auto_order(card: ModelCard, device: DeviceChoice, exported: list[Candidate]) -> list[Candidate]:
    """The CPU candidates ``auto`` tries for ``card``, fastest first (the docstring's rule):
    the last one is where it ends up when every exported runtime fails to load."""
    torch_here = has_torch()
    reduced = [c for c in exported if c.precision != "fp32" and _usable(card, c)]
    fp32 = [c for c in exported if c.precision == "fp32"]
    torch_bf16 = Candidate("torch", "bf16")
    as_device = torch_bf16 if device.precision == "bf16" else Candidate("torch", "fp32")
    order = [c for c in reduced if not c.recheck]
    if torch_here and as_device is torch_bf16 and _passed(card, torch_bf16):
        order.append(torch_bf16)
    order += [c for c in reduced if c.recheck]
    if not torch_here:  # nothing to fall back to: fp32 graphs are torch's fp32
        return order + fp32
    order += [c for c in fp32 if _passed(card, c)]  # none for a model never measured
    return [*order, Candidate("torch", "fp32") if _failed(card, torch_bf16) else as_device]


def _torch_backend(card: ModelCard, device: DeviceChoice, network: nn.Module | None) -> Backend:
    from xraydesk.model.saving import load_network
    from xraydesk.runtime.torch_backend import TorchBackend

    return TorchBackend(network if network is not None else load_network(card), device)


def candidate_verdict(card: ModelCard, candidate: Candidate) -> Faithfulness | None:
    """The shipped verdict of ``candidate`` for the card's weights; None if never measured."""
    return shipped_verdict(card.weights_sha256, candidate.runtime, candidate.measured_as)


def _passed(card: ModelCard, candidate: Candidate) -> bool:
    verdict = candidate_verdict(card, candidate)
    return verdict is not None and verdict.passed


def _usable(card: ModelCard, candidate: Candidate) -> bool:
    """Its verdict passed, and for int8 its calibration ranges ship for these weights."""
    if candidate.precision == "int8" and shipped_ranges(card.weights_sha256) is None:
        return False
    return _passed(card, candidate)


def _failed(card: ModelCard, candidate: Candidate) -> bool:
    """Measured, and missed the bar (never measured is not failed)."""
    verdict = candidate_verdict(card, candidate)
    return verdict is not None and not verdict.passed


def _names(candidate: Candidate) -> tuple[str, str]:
    return candidate.runtime, candidate.measured_as
