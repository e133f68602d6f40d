"""The machine a benchmark ran on, named beside every figure (the CPU changes between
sessions, and AVX2, AVX-512 BF16 and AMX give very different numbers)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_name() -> str:
    """The CPU's model name and the vector/matrix extensions it has, e.g.
    "AMD EPYC, 2 cores, avx2 avx512f avx512_bf16"."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = info.splitlines()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    name = names[0] if names else platform.processor() or platform.machine()
    flags = next((line for line in lines if line.startswith("flags")), "").split()
    cores = sum(1 for line in lines if line.startswith("processor"))
    isa = " ".join(f for f in ISA_FLAGS if f in flags) or "no AVX2"
    return f"{name}, {cores} cores, {isa}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, printed beside figures: on a 2-core machine
    a load above 2 means the figures were taken while something else ran."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"
