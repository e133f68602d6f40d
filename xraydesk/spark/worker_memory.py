"""``spark.executor.pyspark.memory`` and what it does to the model in a Python worker.

Spark applies that setting as an address-space limit (``RLIMIT_AS``) on each Python
worker, not as a limit on memory in use. Address space is not memory: an exported
runtime (OpenVINO) reserves far more than it uses, and under a 4 GiB limit its compiled
graph silently returned no rows (every job then failed with a broadcast or ``zip()``
traceback). torch's own runtime works under 4 GiB, but under 2 GiB torch cannot even map
its libraries. So a worker with such a limit runs the model on torch
(``worker_runtime``), and the driver refuses a limit below ``MIN_WORKER_ADDRESS_SPACE``
with a message saying why, before any job starts (``check_worker_memory``).
"""

from __future__ import annotations

import re

from xraydesk.errors import XRayDeskError

SETTING = "spark.executor.pyspark.memory"
MIN_WORKER_ADDRESS_SPACE = 4 << 30  # measured: torch loads and classifies under 4 GiB
_UNITS = {"": 1 << 20, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def address_space_limited() -> bool:
    """True when this process runs under an address-space limit (a Spark worker with
    ``spark.executor.pyspark.memory`` set)."""
    try:
        import resource
    except ImportError:  # Windows: Spark sets no limit there
        return False
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return soft != resource.RLIM_INFINITY


def worker_runtime() -> str | None:
    """The runtime a worker loads the model with: torch under an address-space limit
    (exported runtimes fail there, see the module docstring), else the usual choice."""
    return "torch" if address_space_limited() else None


def map_torch_first() -> None:
    """Under an address-space limit, import torch now, before the worker reads its first
    Arrow batch: pyarrow's allocator (mimalloc) reserves arenas of address space at its
    first allocation, after which torch's libraries (3.1 GB of mappings) no longer fit
    under 4 GiB ("failed to map segment"). A no-op without a limit."""
    if worker_runtime() == "torch":
        import torch  # noqa: F401


def parse_size(text: str) -> int | None:
    """Bytes in a Spark size (``4g``, ``512m``, ``2048``: MiB without a unit); None when
    it is not one."""
    match = re.fullmatch(r"\s*(\d+)\s*([bkmgt]?)(?:i?b)?\s*", text.lower())
    if match is None:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


def check_worker_memory(value: str | None) -> None:
    """Refuse a ``spark.executor.pyspark.memory`` value too small for the model to load."""
    if not value:
        return
    size = parse_size(value)
    if size is None:
        raise XRayDeskError(f"{SETTING}={value}: not a size (for example 8g)")
    if size < MIN_WORKER_ADDRESS_SPACE:
        raise XRayDeskError(
            f"{SETTING}={value} is too small: Spark applies it as an address-space limit on "
            "each Python worker, and the model's runtime (torch) needs at least "
            f"{MIN_WORKER_ADDRESS_SPACE >> 30}g of address space to load; set it to 4g or "
            "more, or leave it unset and size the executors with spark.executor.memoryOverhead"
        )
