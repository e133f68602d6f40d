"""Bilinear resizing with anti-aliasing, in numpy: the one resize of the model inputs, the
gate's thumbnails and the heat maps.

It computes what ``torch.nn.functional.interpolate(mode="bilinear", antialias=True,
align_corners=False)`` computes (and Pillow's bilinear filter): every output pixel is a
normalised triangle-weighted mean of the input pixels under it, the triangle widened to
the scale factor when shrinking, so a 2,500-pixel radiograph becomes a 224-pixel input
without aliasing. For enlarging (a 7 x 7 heat map to the input square) the triangle
spans one pixel and this is plain bilinear interpolation with edge clamping. It lives
here, not in torch, so that inference runs in a build without torch and the models see
the same inputs whichever build reads the image (tests/model/test_model.py checks it
against torch).

The two passes are separable: rows, then columns. Each pass is a product with the
pass's weight matrix (target x source), which is banded: an output line reads only the
few input lines under its triangle. So the matrix is kept as blocks of consecutive output
lines, each with the band of input lines it reads, and a pass is one small dense product
per block. BLAS does these far faster than gathering the taps one by one (the previous
implementation, kept as the baseline in tests/benchmarks/bench_decode_math.py: 224 px to
160 px 0.23 ms -> 0.06 ms of CPU, 2,500 x 2,048 to 160 px 16 ms -> 1.5 ms, Intel Xeon family
6 model 207, 2 cores, loaded). The zero weights inside a block's band add exact zeros,
so the result is the tap sum up to float32 rounding; a NaN or infinity in the image,
though, spreads over its whole block of output lines rather than its neighbours only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Every block's product stays under OpenBLAS's threading threshold (``xraydesk.blas``).
from xraydesk.blas import SINGLE_THREAD_MNK


@lru_cache(maxsize=64)
def _taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``target`` outputs: the indices of its input pixels (target, K) and
    their normalised weights (target, K); padding taps have weight 0 and index 0."""
    scale = source / target
    support = max(scale, 1.0)  # the triangle's half-width in input pixels
    centers = scale * (np.arange(target, dtype=np.float64) + 0.5)
    first = np.maximum((centers - support + 0.5).astype(np.int64), 0)
    last = np.minimum((centers + support + 0.5).astype(np.int64), source)
    width = int((last - first).max())
    index = first[:, None] + np.arange(width)[None, :]
    distance = (index - centers[:, None] + 0.5) / support
    weight = np.clip(1.0 - np.abs(distance), 0.0, None)
    weight[index >= last[:, None]] = 0.0
    weight /= weight.sum(axis=1, keepdims=True)
    index = np.where(weight > 0, index, 0)
    return index, weight.astype(np.float32)


MAX_BLOCK = 64  # output lines per block: beyond, the band's zeros cost more than the calls
Block = tuple[int, int, int, int, np.ndarray]  # start, stop, lo, hi, weights (see _blocks)


def resize_matrix(source: int, target: int) -> np.ndarray:
    """The dense (target, source) float64 weights of one pass: output line i is
    ``matrix[i] @ input lines``. All weights are >= 0 and each row sums to 1; the identity
    when the sizes are equal (``resize`` then skips the pass). For sums over a resized
    map (trust/attention.py) and for tests; ``resize`` itself keeps only the bands."""
    if source == target:
        return np.eye(source)
    index, weight = _taps(source, target)
    matrix = np.zeros((target, source))
    np.add.at(matrix, (np.arange(target)[:, None], index), weight.astype(np.float64))
    return matrix


@lru_cache(maxsize=256)
def _block_lines(source: int, target: int, other: int) -> int:
    """How many output lines one block holds so that its product, (lines x band) by
    (band x ``other``), stays on the calling thread, the band estimated from the scale."""
    scale = source / target
    reach = 2 * max(scale, 1.0) + 2  # the taps of one line, and a line of rounding

    def mnk(lines: int) -> float:
        return lines * min(lines * scale + reach, source) * other

    lines = MAX_BLOCK
    while lines > 1 and mnk(lines) > SINGLE_THREAD_MNK:
        lines //= 2
    return lines


@lru_cache(maxsize=32)
def _blocks(source: int, target: int, lines: int, columns: bool) -> tuple[Block, ...]:
    """The pass's weights cut into blocks of ``lines`` output lines: (start, stop, lo, hi,
    weights), weights (stop - start, hi - lo) float32 over input lines lo:hi, the band
    outside which the block's weights are all 0; transposed and contiguous for the column
    pass (``columns``: a third faster than handing BLAS the transposed view). About
    (64 x source + 2 x target) floats in all, so the cache stays within a few megabytes
    even for full-size films."""
    index, weight = _taps(source, target)
    blocks = []
    for start in range(0, target, lines):
        stop = min(start + lines, target)
        rows, taps = np.nonzero(weight[start:stop] > 0)
        inputs = index[start:stop][rows, taps]
        lo, hi = int(inputs.min()), int(inputs.max()) + 1
        block = np.zeros((stop - start, hi - lo), np.float32)
        np.add.at(block, (rows, inputs - lo), weight[start:stop][rows, taps])
        block = np.ascontiguousarray(block.T) if columns else block
        block.flags.writeable = False  # shared by every thread that resizes
        blocks.append((start, stop, lo, hi, block))
    return tuple(blocks)


def _along(image: np.ndarray, size: int, axis: int) -> np.ndarray:
    """One pass along ``axis`` (0: rows, 1: columns) of a C-contiguous float32 image: per
    block, its weights times the band of input lines. A block whose product would still
    wake BLAS threads (a film thousands of pixels wide) is cut along the other axis too."""
    other = image.shape[1 - axis]
    lines = _block_lines(image.shape[axis], size, other)
    shape = (size, other) if axis == 0 else (other, size)
    out = np.empty(shape, np.float32)
    for start, stop, lo, hi, weight in _blocks(image.shape[axis], size, lines, axis == 1):
        step = SINGLE_THREAD_MNK // weight.size
        if step >= other:  # the usual case: one product per block
            if axis == 0:
                np.matmul(weight, image[lo:hi], out=out[start:stop])
            else:
                np.matmul(image[:, lo:hi], weight, out=out[:, start:stop])
            continue
        for first in range(0, other, max(1, step)):
            part = slice(first, first + max(1, step))
            if axis == 0:
                np.matmul(weight, image[lo:hi, part], out=out[start:stop, part])
            else:
                np.matmul(image[part, lo:hi], weight, out=out[part, start:stop])
    return out


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D image resized to (height, width), float32, anti-aliased bilinear."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    image = np.ascontiguousarray(image)  # the bands are sliced as BLAS operands
    if height < 1 or width < 1 or image.size == 0:
        raise ValueError(f"cannot resize {image.shape} to {(height, width)}")
    # Shrink the rows first (the column pass then runs on the small result); when
    # enlarging, rows last.
    passes = [(height, 0), (width, 1)] if height < image.shape[0] else [(width, 1), (height, 0)]
    for size, axis in passes:
        if image.shape[axis] != size:
            image = _along(image, size, axis)
    return np.ascontiguousarray(image)
