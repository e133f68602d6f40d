"""Matrix products that stay on the calling thread: OpenBLAS's threading threshold.

OpenBLAS runs a product of m x k by k x n on the calling thread up to m * n * k = 65536 * 4
(its GEMM_MULTITHREAD_THRESHOLD); above, it wakes its worker threads, and on a busy
machine (the model's streams, the decode threads, another process) waiting for them
costs a scheduler time slice, milliseconds, for a product of microseconds: the
out-of-distribution score of a batch of 32 took 19 ms instead of 0.2 (Intel Xeon family
6 model 207, 2 cores, beside a training run). The resize (``imaging.resample``), the
input gate's numpy network (``trust.gate_forward``) and the OOD score (``trust.ood``)
cut their products into row blocks under it.
"""

from __future__ import annotations

import numpy as np

SINGLE_THREAD_MNK = 65536 * 4


def matmul_on_this_thread(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D arrays, in row blocks small enough that BLAS keeps each on the
    calling thread; the same values as ``a @ b`` (each row's product is unchanged)."""
    m, k = a.shape
    n = b.shape[1]
    rows = max(1, SINGLE_THREAD_MNK // max(1, k * n))
    if m <= rows:
        return a @ b
    out = np.empty((m, n), np.result_type(a, b))
    for start in range(0, m, rows):
        np.matmul(a[start : start + rows], b, out=out[start : start + rows])
    return out
