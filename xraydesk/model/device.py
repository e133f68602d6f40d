"""Choosing where and how a model runs: CUDA, Apple MPS or CPU, and at what precision.

Choosing the CPU does not import torch (2.5 s on a 2-core machine): on a machine without
an NVIDIA driver or Apple GPU, ``select_device`` answers from the CPU's flags, so a model
that runs on an exported runtime (``xraydesk.runtime``) never loads torch at all. torch is
imported only to ask about a GPU that may be there, and by the code that runs torch.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
import threading
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from xraydesk.environment import reduced_precision_allowed
from xraydesk.errors import ModelError
from xraydesk.optional import FULL_BUILD_HINT, has_torch

if TYPE_CHECKING:
    import torch

DevicePreference = Literal["auto", "cpu", "cuda", "mps"]
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
AutocastPrecision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cpu", "cuda:0" or "mps": what torch's ``.to()`` takes
    precision: AutocastPrecision  # the autocast precision; fp32: none
    label: str  # what users see, e.g. "CPU, bf16" or "NVIDIA H100 (CUDA, bf16)"

    @property
    def type(self) -> str:
        return self.device.partition(":")[0]

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The torch dtype of ``precision``; None for plain float32."""
        if self.precision == "fp32":
            return None
        import torch

        return torch.bfloat16 if self.precision == "bf16" else torch.float16

    @property
    def memory_format(self) -> torch.memory_format:
        """channels_last: what oneDNN runs fastest on a CPU, and what cuDNN's tensor-core
        convolutions want in bf16/fp16 on CUDA; MPS picks its own."""
        import torch

        return torch.contiguous_format if self.type == "mps" else torch.channels_last

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.type, dtype=self.autocast_dtype)

    def at_fp32(self) -> DeviceChoice:
        """The same device without mixed precision (a model whose bf16 results were
        measured unfaithful runs so)."""
        if self.precision == "fp32":
            return self
        return replace(self, precision="fp32", label=self.label.replace(self.precision, "fp32"))


CPU_FP32 = DeviceChoice("cpu", "fp32", "CPU, fp32")


@cache
def cpu_supports_bf16() -> bool:
    """True where the CPU runs bf16 natively (AVX-512 BF16 or AMX): there it is faster.

    On Linux read from the CPU's flags (no torch import); elsewhere asked of oneDNN.
    """
    flags = cpu_flags()
    if flags is not None:
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    if not has_torch():
        return False
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, with its family and model numbers where ``/proc/cpuinfo``
    gives them: "AMD EPYC (family 25 model 17)". Why the numbers: a virtual machine often
    shows only the vendor's short name, which does not say the generation (AVX-512, bf16
    and AMX make figures differ several times over between two "Xeon"s)."""
    import platform

    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine() or "CPU"
    family, model = fields.get("cpu family"), fields.get("model")
    return f"{name} (family {family} model {model})" if family and model else name


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from ``/proc/cpuinfo`` (None where there is none: not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return None


def _may_have_cuda() -> bool:
    """False only where CUDA is surely absent, so there is no reason to import torch to ask."""
    if "torch" in sys.modules:  # asking torch costs nothing more now
        return True
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return False
    return nvidia_driver_present()


def nvidia_driver_present() -> bool:
    """Whether the NVIDIA driver library loads: torch needs it for any CUDA device."""
    if sys.platform == "darwin":
        return False
    try:
        ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return False
    return True


def _may_have_mps() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def device_available(choice: str) -> bool:
    """Whether a device choice can work on this machine (the GUI greys out the others);
    torch is asked only where the GPU may be there."""
    if choice in ("auto", "cpu"):
        return True
    if not has_torch():  # the light build: the CPU only
        return False
    if choice == "cuda":
        if not _may_have_cuda():
            return False
        import torch

        return torch.cuda.is_available()
    if choice == "mps" and ("torch" in sys.modules or _may_have_mps()):
        import torch

        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    return False


def select_device(preference: str = "auto", precision: str | None = None) -> DeviceChoice:
    """Resolve a user preference to a device; ``auto`` prefers CUDA, then MPS, then CPU.
    ``precision``: "auto" or "fp32" (None: as ``XRAYDESK_PRECISION`` says)."""
    preference = (preference or "auto").lower()
    if preference not in DEVICE_CHOICES:
        raise ModelError(
            f"unknown device {preference!r}: choose one of {', '.join(DEVICE_CHOICES)}"
        )
    if not has_torch():  # the light build: exported runtimes on the CPU only
        if preference in ("cuda", "mps"):
            raise ModelError(f"{preference.upper()} needs PyTorch: {FULL_BUILD_HINT}")
        return DeviceChoice("cpu", "fp32", "CPU")
    mixed = reduced_precision_allowed(precision)  # fp32: reference runs, debugging
    if preference == "cuda" or (preference == "auto" and _may_have_cuda()):
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            precision = precision if mixed else "fp32"
            return DeviceChoice("cuda:0", precision, f"{name} (CUDA, {precision})")
    if preference == "cuda":
        raise ModelError("CUDA was requested but no CUDA device is available; use --device cpu")
    if preference == "mps" or (preference == "auto" and _may_have_mps()):
        import torch

        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return DeviceChoice("mps", "fp32", "Apple GPU (MPS, fp32)")
    if preference == "mps":
        raise ModelError("MPS was requested but this machine has no Apple GPU; use --device cpu")
    if mixed and cpu_supports_bf16():
        return DeviceChoice("cpu", "bf16", "CPU, bf16")
    return CPU_FP32


def use_one_torch_thread_here() -> None:
    """Make torch calls on the calling thread (a data-loading thread) single-threaded.

    A loader thread's small tensor ops (resize, augmentation) otherwise fan out over every
    core through OpenMP and fight the model's own threads: on a 2-core CPU they ran 10-30
    times slower. ``torch.set_num_threads`` applies to the calling thread once it has
    started, but also becomes the default for threads created later, so the default is
    put back from a short-lived thread, leaving the model's threads as they were.
    """
    if "torch" not in sys.modules:  # not loaded (light build, exported runtime): nothing
        return  # of torch's to limit, and importing it here would cost 2.5 s per process
    import torch

    default = torch.get_num_threads()
    torch.set_num_threads(1)
    restore = threading.Thread(target=torch.set_num_threads, args=(default,))
    restore.start()
    restore.join()
