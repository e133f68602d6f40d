"""The machine a benchmark ran on, named beside every figure (the CPU changes between
sessions, and AVX2, AVX-512 BF16 and AMX give very different numbers)."""

from __future__ import annotations

import os

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_name() -> str:
    """The CPU's model name and the vector/matrix extensions it has, e.g.
    "AMD EPYC (family 25 model 17), 2 cores, avx2 avx512f avx512_bf16"."""
    from xraydesk.model.device import cpu_flags, cpu_model

    name, flags = cpu_model(), cpu_flags()
    if flags is None:
        return name
    isa = " ".join(f for f in ISA_FLAGS if f in flags) or "no AVX2"
    return f"{name}, {os.cpu_count()} cores, {isa}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, printed beside figures: on a 2-core machine
    a load above 2 means the figures were taken while something else ran."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def matmul_peak_gflops(dtype: str = "bf16", n: int = 2048, seconds: float = 1.0) -> float:
    """The CPU's measured peak for dense matrix products (GFLOP/s, best of repeated
    ``n`` x ``n`` products in torch, which calls oneDNN: AMX or AVX-512 BF16 for bf16),
    on every core whatever the caller's thread setting.

    Why measured and not computed from the clock and the flags: AMX's tile unit, AVX-512
    BF16 and AVX2 differ by an order of magnitude per cycle, and the clock a 2-core
    virtual machine actually runs at is not in /proc/cpuinfo; a product this size is as
    close to the hardware's limit as software gets, so a network can be judged by its
    share of it."""
    import time

    import torch

    kind = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        a = torch.randn(n, n).to(kind)
        b = torch.randn(n, n).to(kind)
        torch.mm(a, b)  # the first product picks and builds oneDNN's kernel
        best, end = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 2 * n**3 / best / 1e9


def network_gflop(network: object, channels: int, size: int) -> float:
    """Floating-point operations (GFLOP, a multiply-add counted as two) of one image's
    forward pass through ``network`` (a torch module): its convolutions and linear layers,
    which are all but a fraction of a percent of a ResNet's arithmetic."""
    import torch
    from torch import nn

    total = 0

    def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_out = (
                module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            )
            total += 2 * per_out * output.numel()
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * output.numel()

    hooks = [
        m.register_forward_hook(count)
        for m in network.modules()  # type: ignore[attr-defined]
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            network.eval()(torch.zeros(1, channels, size, size))  # type: ignore[attr-defined]
    finally:
        for hook in hooks:
            hook.remove()
    return total / 1e9


def hardware_limit(network: object, channels: int, size: int, dtype: str = "bf16") -> dict:
    """The images/s the measured matrix peak allows for ``network`` at ``size`` px: what a
    runtime's images/s is a share of (issue 28). Printed by the runtime and batch
    benchmarks beside their rates."""
    gflop = network_gflop(network, channels, size)
    peak = matmul_peak_gflops(dtype)
    return {"gflop_per_image": gflop, "peak_gflops": peak, "images_per_s": peak / gflop}


def remeasured(limit: dict, dtype: str = "bf16") -> dict:
    """``limit`` with the matrix peak measured once more and the higher kept. A 1-s window
    that meets a busy core reads the peak low, and every share of it high (one loaded
    bench_batch run put its pipeline at 170 % of the limit); the hardware's peak is the
    best it shows, so a benchmark measures before and after its own work."""
    peak = max(limit["peak_gflops"], matmul_peak_gflops(dtype))
    return {**limit, "peak_gflops": peak, "images_per_s": peak / limit["gflop_per_image"]}
