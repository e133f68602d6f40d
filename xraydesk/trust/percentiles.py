"""Two tail percentiles of an image, equal to ``np.percentile(values, [low, high])``
(its default 'linear' method) at a fraction of its cost.

Why: the input gate's blank check reads the 1st and 99th percentiles of every image, and
``np.percentile`` partitions the whole image to find them: 0.35-0.45 ms of the decode
stage's few milliseconds on a 224 x 224 image (Intel Xeon family 6 model 207). Only the
tails matter, so a strided sample gives thresholds that bound them, and only the pixels
beyond each threshold (a few percent) are partitioned. The k-th smallest value of all
pixels is the k-th smallest of those at or below a threshold whenever more than k of them
are, which is counted before it is relied on: a sample that misjudged the tails (a
periodic pattern in step with the stride) falls back to the full partition, so the
result is always numpy's, bit for bit.

Also here, for the same checks: ``standard_deviation`` and ``mean``, numpy's own values
bit for bit without its per-call bookkeeping (the gate's statistics and thumbnail call
them on every image; issue 28).
"""

from __future__ import annotations

import numpy as np

# Every 17th pixel estimates the tails: a prime, so that successive rows are sampled in
# different columns (a step of 16 sampled the same 14 columns of every 224-pixel row, and a
# dark border there misjudged 7 of 200 films' tails).
SAMPLE_STEP = 17
MARGIN = 2.0  # each threshold is taken at twice the tail's share (1 % -> 2 %) of the sample
SMALL = 4096  # below this many values the full partition is as cheap


def low_high(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """``np.percentile(values, [low, high])`` as two floats; values holding NaN, and
    empty ones, are left to numpy itself."""
    flat = np.asarray(values).ravel()
    n = flat.size
    virtual = (n - 1) * (np.array([low, high], dtype=np.float64) / 100)  # numpy's indexes
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    if n == 0 or np.isnan(flat.max()):  # NaN sorts last, and numpy has its own rules for it
        a, b = np.percentile(flat, [low, high])
        return float(a), float(b)
    picked = _tails(flat, below, above, low, high) if n >= SMALL and low < 50 < high else None
    if picked is None:
        ordered = np.partition(flat, np.unique(np.concatenate([below, above])))
        picked = ordered[below], ordered[above]
    previous, following = picked
    result = _lerp(previous, following, virtual - below)
    return float(result[0]), float(result[1])


def _tails(
    flat: np.ndarray, below: np.ndarray, above: np.ndarray, low: float, high: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The values at sorted ranks ``below`` and ``above`` (two each: the low and the high
    percentile's), from the pixels beyond thresholds read off a strided sample; None when
    the thresholds do not hold enough pixels."""
    n = flat.size
    # sorted, not partitioned: numpy's sort of a few thousand values is vectorised, its
    # partition at two ranks is not (14 vs 50 us on 224 x 224, Xeon family 6 model 207)
    sample = np.sort(flat[::SAMPLE_STEP])
    m = sample.size
    at_floor = min(m - 1, int(np.ceil(m * MARGIN * low / 100)))
    at_ceiling = max(0, m - 1 - int(np.ceil(m * MARGIN * (100 - high) / 100)))
    floor, ceiling = sample[at_floor], sample[at_ceiling]
    bottom = flat[flat <= floor]  # every value at or below: ranks 0 .. len - 1
    top = flat[flat >= ceiling]  # ranks n - len .. n - 1
    if bottom.size <= above[0] or top.size < n - below[1]:
        return None
    start = n - top.size  # the rank of top's smallest value among all
    lows = _ranked(bottom, int(below[0]), int(above[0]))
    highs = _ranked(top, int(below[1]) - start, int(above[1]) - start)
    previous = np.array([lows[0], highs[0]], dtype=flat.dtype)
    following = np.array([lows[1], highs[1]], dtype=flat.dtype)
    return previous, following


def _ranked(values: np.ndarray, first: int, second: int) -> tuple[np.generic, np.generic]:
    """The values at sorted ranks ``first`` and ``second`` (the same or the next) of
    ``values``, which are reordered: one partition (numpy's vectorised one, at a single
    rank), then the smallest value above it."""
    values.partition(first)
    at = values[first]
    return at, (at if second == first else values[first + 1 :].min())


def standard_deviation(values: np.ndarray, ddof: int = 0) -> float:
    """``float(values.std(ddof=ddof))`` of a float32 or float64 array, bit for bit:
    numpy's own steps (``_var`` in ``numpy._core._methods``: the sum, the mean divided in
    place, the squared deviations summed, divided, square root) without its per-call
    bookkeeping, which cost half as much again on a 224 x 224 image (the gate's blank
    check) and more on a 64 x 64 thumbnail."""
    values = np.asarray(values)
    count = np.intp(values.size)
    if values.dtype not in (np.float32, np.float64) or count <= ddof:
        return float(values.std(ddof=ddof))  # numpy's warnings and NaN
    mean = np.add.reduce(values, axis=None, keepdims=True)
    np.true_divide(mean, count, out=mean, casting="unsafe")
    deviation = np.subtract(values, mean)
    np.square(deviation, out=deviation)
    total = np.add.reduce(deviation, axis=None)
    return float(np.sqrt(total.dtype.type(total / np.maximum(count - ddof, 0))))


def mean(values: np.ndarray) -> np.floating:
    """``values.mean()`` of a float32 or float64 array, bit for bit (numpy's sum divided
    by the count, in the array's type), without its per-call bookkeeping."""
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64) or values.size == 0:
        return values.mean()
    total = np.add.reduce(values, axis=None)
    return total.dtype.type(total / np.intp(values.size))


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's own interpolation between neighbouring sorted values (``_lerp`` in
    ``np.percentile``), the same operations in the same types: the same result bit for
    bit."""
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5, casting="unsafe", dtype=out.dtype)
    return out
