"""Choosing where and how a model runs: CUDA, Apple MPS or CPU, and at what precision.

torch is imported inside the functions: front doors import ``DEVICE_CHOICES`` for their
``--device`` option at start-up, long before (or without ever) running a model.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from xraydesk.errors import ModelError
from xraydesk.optional import FULL_BUILD_HINT, has_torch

if TYPE_CHECKING:
    import torch

DevicePreference = Literal["auto", "cpu", "cuda", "mps"]
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device | str  # "cpu" where torch is not installed (the light build)
    autocast_dtype: torch.dtype | None  # None: plain float32
    label: str  # what users see, e.g. "CPU, bf16" or "NVIDIA H100 (CUDA, bf16)"

    @property
    def type(self) -> str:
        return self.device if isinstance(self.device, str) else self.device.type

    @property
    def memory_format(self) -> torch.memory_format:
        """channels_last: what oneDNN runs fastest on a CPU, and what cuDNN's tensor-core
        convolutions want in bf16/fp16 on CUDA; MPS picks its own."""
        import torch

        return torch.contiguous_format if self.device.type == "mps" else torch.channels_last

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def cpu_supports_bf16() -> bool:
    """True where oneDNN has native bf16 kernels (AVX-512 BF16 or AMX): there it is faster."""
    if not has_torch():
        return False
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _precision_allowed() -> bool:
    # XRAYDESK_PRECISION=fp32 turns mixed precision off everywhere (reference runs, debugging).
    return os.environ.get("XRAYDESK_PRECISION", "auto").lower() != "fp32"


def select_device(preference: str = "auto") -> DeviceChoice:
    """Resolve a user preference to a device; ``auto`` prefers CUDA, then MPS, then CPU."""
    preference = (preference or "auto").lower()
    if preference not in DEVICE_CHOICES:
        raise ModelError(
            f"unknown device {preference!r}: choose one of {', '.join(DEVICE_CHOICES)}"
        )
    if not has_torch():  # the light build: exported runtimes on the CPU only
        if preference in ("cuda", "mps"):
            raise ModelError(f"{preference.upper()} needs PyTorch: {FULL_BUILD_HINT}")
        return DeviceChoice("cpu", None, "CPU")
    import torch

    mixed = _precision_allowed()
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        dtype = dtype if mixed else None
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[dtype]
        return DeviceChoice(torch.device("cuda", 0), dtype, f"{name} (CUDA, {precision})")
    if preference == "cuda":
        raise ModelError("CUDA was requested but no CUDA device is available; use --device cpu")
    mps = getattr(torch.backends, "mps", None)
    if preference in ("auto", "mps") and mps is not None and mps.is_available():
        return DeviceChoice(torch.device("mps"), None, "Apple GPU (MPS, fp32)")
    if preference == "mps":
        raise ModelError("MPS was requested but this machine has no Apple GPU; use --device cpu")
    if mixed and cpu_supports_bf16():
        return DeviceChoice(torch.device("cpu"), torch.bfloat16, "CPU, bf16")
    return DeviceChoice(torch.device("cpu"), None, "CPU, fp32")


def use_one_torch_thread_here() -> None:
    """Make torch calls on the calling thread (a data-loading thread) single-threaded.

    A loader thread's small tensor ops (resize, augmentation) otherwise fan out over every
    core through OpenMP and fight the model's own threads: on a 2-core CPU they ran 10-30
    times slower. ``torch.set_num_threads`` applies to the calling thread once it has
    started, but also becomes the default for threads created later, so the default is
    put back from a short-lived thread, leaving the model's threads as they were.
    """
    if not has_torch():  # the light build: nothing of torch's to limit
        return
    import torch

    default = torch.get_num_threads()
    torch.set_num_threads(1)
    restore = threading.Thread(target=torch.set_num_threads, args=(default,))
    restore.start()
    restore.join()
