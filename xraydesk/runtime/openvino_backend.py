"""OpenVINO on the CPU: the exported graph at fp32, or bf16 where the CPU has native bf16
(AVX-512 BF16 or AMX), or a quantized int8 graph.

The inference precision is always set explicitly: OpenVINO's own default on an AMX CPU is
bf16, which would make "fp32" a lie. Each call borrows an infer request from the
backend's pool (``RequestPool``) and gives it back, so the viewer and a batch run share
the compiled model without waiting for each other, and a request's buffers are reused.
(A request kept per thread in thread-local storage outlived its thread's Python state:
the viewer segfaulted on closing after its worker had used it; the pool's requests live
and die with the backend.)

Two modes (``MODES``): "latency", one stream using every core, for the viewer's single
image; "throughput", several streams (2 of 1 thread each on 2 cores), with a batch cut
into slices that the streams take as they become free, one request per slice, in threads
(``run_split``, ``CHUNKS_PER_STREAM``), for the batch engine
(``batch_mode``). Both give the same numbers (tests/runtime/test_mixed.py).

OpenVINO is only ever imported through ``import_openvino``: ``import openvino`` imports its
model converter, whose ``openvino_telemetry`` writes ``$HOME/intel/openvino_ga_cid`` and
``$HOME/intel/stats`` and sends an "import" event to Google Analytics. XRayDesk promises
that nothing leaves the machine, so the telemetry package is made unimportable first
(OpenVINO then falls back to its own no-op stub); no opt-out file is written to $HOME.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from xraydesk.optional import float32_array
from xraydesk.optional import installed as _installed
from xraydesk.runtime.backend import Backend, Outputs, Precision, RuntimeUnavailable
from xraydesk.runtime.names import OUTPUT_NAMES

log = logging.getLogger(__name__)

PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "int8")
_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: quantized layers, f32 around
# LATENCY: one stream using every core (the viewer, one image); THROUGHPUT: several streams,
# a batch split between them (``run_split``), for batch work where it measured faster
MODES = ("latency", "throughput")
# Slices of a batch per stream in throughput mode, taken by whichever stream is free
# (``run_split``). Why more than one: the batch engine decodes on the same cores while the
# model runs, so one stream shares its core and lags; with one half-batch per stream the
# batch ended when the slower half did. Quarters let the free stream take the lagging
# one's share: chest-3class's folder pipeline ran 142-157 images/s instead of 110-137
# (kermany-pediatric, 1,500 files, Intel Xeon family 6 model 207, 2 cores, quiet;
# alternate runs in one process). Alone, with nothing beside it, halves are about as fast
# or a little faster (213 against 198 images/s in the same run): bench_batch's plain bf16
# yardstick takes the better of the two.
CHUNKS_PER_STREAM = 2


# OpenVINO's telemetry package: blocked before OpenVINO is imported (see the docstring).
TELEMETRY_MODULE = "openvino_telemetry"


def import_openvino() -> ModuleType:
    """``openvino``, imported with its telemetry switched off (ImportError if missing).

    A ``None`` entry in ``sys.modules`` makes ``import openvino_telemetry`` raise
    ImportError, which ``openvino.tools.ovc`` answers with its no-op stub: no client-id
    file, no stats file, no DNS query, no connection. Works the same in a frozen app."""
    if TELEMETRY_MODULE not in sys.modules:
        sys.modules[TELEMETRY_MODULE] = None  # type: ignore[assignment]
    import openvino

    return openvino


def installed() -> bool:
    """Whether the package can be imported, without importing it."""
    return _installed("openvino")


@functools.cache
def core() -> Any:
    """The process's one ``ov.Core``: making one loads OpenVINO's CPU plugin (about 0.2 s),
    which asking for the CPU's capabilities and compiling each graph then share. Every
    inference needs it first, so it also makes the process's first tensor read
    (``_first_tensor_read``)."""
    ov = import_openvino()
    _first_tensor_read(ov)
    return ov.Core()


_FIRST_READ = threading.Lock()


def _first_tensor_read(ov: ModuleType) -> None:
    """Read a tensor's ``data`` once, under a lock, before any inference thread does.

    Why: the first ``Tensor.data`` of a process sets up numpy's API inside OpenVINO's
    bindings, a C++ one-time initialisation that takes the GIL inside its guard. Two
    threads reading their first outputs at once (the throughput split's, or a decode and
    a viewer thread) deadlocked: one held the guard waiting for the GIL, the other held
    the GIL waiting for the guard (gdb on a hung batch run; 11 of 30 fresh processes hung
    with four threads started together, none after this read; OpenVINO 2026.4)."""
    with _FIRST_READ:
        ov.Tensor(np.zeros(1, np.float32)).data  # noqa: B018 - the read is the point


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether OpenVINO runs bf16 natively on this CPU (else it would emulate it, slowly);
    asked once per process."""
    try:
        return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:
        return False


class OpenVinoBackend(Backend):
    runtime = "openvino"

    def __init__(
        self,
        graph: Path,
        precision: Precision = "fp32",
        threads: int = 0,
        mode: str = "latency",
        cached: bool = True,
        per_stream: int = CHUNKS_PER_STREAM,
    ) -> None:
        """``cached``: False for a backend used once and dropped (the check of a new graph
        before another backend is built from it), whose compiled blob would never be read
        again and would cost its write (``compiled_cache_dir``). ``per_stream``: slices of
        a batch per stream in throughput mode (``CHUNKS_PER_STREAM``)."""
        if precision not in PRECISIONS:
            raise RuntimeUnavailable(f"OpenVINO has no {precision} precision")
        self.compiled = compile_graph(str(graph), precision, mode, threads, graph, cached)
        ports = {port.get_any_name(): port for port in self.compiled.outputs}
        self._ports = [ports[name] for name in OUTPUT_NAMES]
        self.precision = precision
        self.graph = graph
        self.threads = threads
        self.mode = mode
        self.streams = streams(self.compiled)
        self.per_stream = per_stream
        self.requests = RequestPool(self.compiled)

    def in_mode(self, mode: str) -> Backend:
        """The same graph, precision and threads compiled for ``mode``; itself if it is."""
        if mode == self.mode:
            return self
        return OpenVinoBackend(
            self.graph, self.precision, self.threads, mode, per_stream=self.per_stream
        )

    def run(self, batch: np.ndarray, activations: bool = True) -> Outputs:
        batch = float32_array(batch)
        return run_split(self._run_part, batch, self.streams, activations, self.per_stream)

    def _run_part(self, batch: np.ndarray, activations: bool) -> Outputs:
        result = self.requests.infer({0: batch})
        logits, features, stage = (result[port] for port in self._ports)
        return Outputs(logits, features, stage if activations else None)


class RequestPool:
    """Infer requests of one compiled model, lent to one call at a time and kept for the
    next: a request holds its intermediate buffers, so a fresh one per call allocates
    them again (the mixed graph's two parts and each throughput stream made that four
    times per batch). Owned by the backend, so a request lives exactly as long as its
    compiled model; never kept per thread (see the module's docstring)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self._free: list[Any] = []
        self._lock = threading.Lock()

    def infer(self, inputs: dict) -> dict[Any, np.ndarray]:
        """Outputs of one inference, copied out of the request's reused buffers."""
        with self._lock:
            request = self._free.pop() if self._free else self.compiled.create_infer_request()
        try:
            result = request.infer(inputs)
            return {port: np.array(value, dtype=np.float32) for port, value in result.items()}
        finally:
            with self._lock:
                self._free.append(request)


def compile_config(precision: Precision, mode: str = "latency", threads: int = 0) -> dict:
    """OpenVINO's compile settings: the precision always explicit (see the docstring), the
    performance hint, and a thread count when the caller limits it (a Spark task)."""
    if mode not in MODES:
        raise RuntimeUnavailable(f"OpenVINO has no {mode!r} mode: choose one of {MODES}")
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": _HINT[precision],
        "PERFORMANCE_HINT": mode.upper(),
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def compile_graph(
    model: Any,
    precision: Precision,
    mode: str,
    threads: int,
    graph: Path | str,
    cached: bool = True,
) -> Any:
    """``model`` (a file name or an ``ov.Model``) compiled for the CPU, through the
    compiled cache unless not ``cached``; an error names ``graph``."""
    try:
        ov_core = core()
    except ImportError as exc:
        raise RuntimeUnavailable("OpenVINO is not installed") from exc
    except Exception as exc:  # its CPU plugin did not load
        raise RuntimeUnavailable(f"OpenVINO cannot start ({exc})") from exc
    config = compile_config(precision, mode, threads)
    blobs = compiled_cache_dir(model) if cached else None
    if blobs is not None:
        try:
            return ov_core.compile_model(model, "CPU", {**config, "CACHE_DIR": str(blobs)})
        except Exception as exc:  # a damaged or unwritable cache: compile without it
            log.info("OpenVINO's compiled cache not used (%s: %s)", type(exc).__name__, exc)
    try:
        return ov_core.compile_model(model, "CPU", config)
    except Exception as exc:  # OpenVINO raises RuntimeError for most failures
        raise RuntimeUnavailable(f"{graph}: OpenVINO cannot compile it ({exc})") from exc


COMPILED_DIR = "compiled"


def compiled_cache_dir(model: Any) -> Path | None:
    """Where OpenVINO keeps what it compiled from a graph file (its ``CACHE_DIR``): the
    ``compiled`` folder beside the file; None for an in-memory model, or where the folder
    cannot be made.

    Why: compiling chest-3class's graph costs 0.2-0.4 s a part and precision, and the
    viewer and every ``xraydesk classify`` compile again in each new process; a compiled
    blob read back from this cache costs about 0.05 s (Intel Xeon family 6 model 207, 2
    cores). OpenVINO keys each blob by the file and the compile settings, so another
    precision or mode gets its own. Only files: for an ``ov.Model`` OpenVINO hashes the
    whole model (its 90 MB of weights) at every compile, which cost more than it saved
    (measured 0.7 s against 0.2 s without the cache). ``export.prune_cache`` empties it
    when a model's graph goes. The blobs stay on this machine, like the graphs."""
    if not isinstance(model, (str, Path)):
        return None
    folder = Path(model).parent / COMPILED_DIR
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    return folder


def streams(compiled: Any) -> int:
    """How many requests the compiled model runs at once (1 in latency mode)."""
    try:
        return max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    except Exception:
        return 1


def run_split(
    run_part: Callable[[np.ndarray, bool], Outputs],
    batch: np.ndarray,
    parts: int,
    keep: bool,
    per_part: int = 1,
) -> Outputs:
    """``run_part`` on ``parts`` threads at once (one request each: ``infer`` releases the
    GIL), over ``parts * per_part`` slices of the batch that each thread takes as it
    becomes free (the pool's queue: a thread slowed by other work on its core does fewer),
    joined in order; the whole batch at once when ``parts`` is 1 or the batch has one row."""
    parts = min(parts, len(batch))
    if parts <= 1:
        return run_part(batch, keep)
    slices = np.array_split(batch, min(len(batch), parts * max(1, per_part)))
    with ThreadPoolExecutor(parts) as pool:
        return Outputs.joined(list(pool.map(lambda part: run_part(part, keep), slices)))
