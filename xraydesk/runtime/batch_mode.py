"""The backend the batch engine runs on: the viewer's own, or its twin compiled in
OpenVINO's throughput mode, whichever was measured faster for batches on CPUs like this.

The viewer classifies one image at a time and wants it soon: OpenVINO's LATENCY hint, one
stream using every core. A batch of 32 can instead be split between several streams
(THROUGHPUT: on 2 cores, 2 streams of 1 thread, each taking quarters of the batch on its
own request as it becomes free: ``openvino_backend.run_split``), which spares the
per-layer synchronisation of two threads working on one request, and is what matters
when another process, or the run's own decoding, takes a core away now and then.

``BATCH_MODE`` is the measured choice (tests/benchmarks/bench_runtime.py prints both
modes side by side: "openvino bf16" and "openvino bf16 (throughput mode)"). The twin is
compiled once per backend, at the first batch, and shares nothing with the viewer's
requests; each backend builds its own twin (``Backend.in_mode``: how it was made stays
in its class), and torch and ONNX Runtime backends are used as they are.
"""

from __future__ import annotations

import threading
import weakref

from xraydesk.runtime.backend import Backend

BATCH_MODE = "throughput"
_twins: weakref.WeakKeyDictionary[Backend, Backend] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def batch_backend(backend: Backend, mode: str = BATCH_MODE) -> Backend:
    """``backend`` as the batch engine should run it: in ``mode`` where it is an
    OpenVINO backend in another mode (compiled once, then reused), else itself."""
    if backend.mode in (None, mode):
        return backend
    with _lock:
        twin = _twins.get(backend)
        if twin is None:
            twin = _twins[backend] = backend.in_mode(mode)
        return twin
