"""The banded-product resize against the tap-by-tap sum it replaced, and against torch.

``_tap_resize`` is the previous implementation (a gather of each tap in turn), kept here
as the reference: the products must give the same pixels up to float32 rounding on every
kind of shape the app resizes (films shrunk to the input square or the gate's thumbnail,
heat maps enlarged to the input square or the film, one-pixel and non-square edges).
"""

from __future__ import annotations

import numpy as np
import pytest

from xraydesk.imaging import resample
from xraydesk.imaging.resample import _taps, resize, resize_matrix


def _tap_along(image: np.ndarray, size: int, axis: int) -> np.ndarray:
    index, weight = _taps(image.shape[axis], size)
    out = np.zeros((*image.shape[:axis], size, *image.shape[axis + 1 :]), np.float32)
    for k in range(index.shape[1]):
        tap = weight[:, k, None] if axis == 0 else weight[None, :, k]
        out += np.take(image, index[:, k], axis=axis) * tap
    return out


def _tap_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    image = np.asarray(image, np.float32)
    passes = [(height, 0), (width, 1)] if height < image.shape[0] else [(width, 1), (height, 0)]
    for size, axis in passes:
        if image.shape[axis] != size:
            image = _tap_along(image, size, axis)
    return image


SHAPES = [
    ((224, 224), (160, 160)),  # a pool's film to the model input
    ((224, 224), (64, 64)),  # ... and to the gate's thumbnail
    ((701, 523), (224, 224)),  # non-square shrink
    ((2500, 2048), (160, 160)),  # a full-size film
    ((5, 5), (160, 160)),  # a class map to the input square
    ((7, 7), (224, 224)),
    ((160, 160), (1100, 900)),  # a heat map to the source film
    ((160, 130), (2500, 2048)),
    ((300, 40), (64, 200)),  # one side shrinks, the other grows
    ((40, 300), (200, 64)),
    ((1, 1), (5, 7)),  # one pixel
    ((1, 9), (1, 3)),
    ((9, 1), (4, 1)),
    ((13, 17), (1, 1)),
    ((3, 4), (3, 4)),  # nothing to do
    ((97, 31), (96, 32)),  # almost the same size
]


@pytest.mark.parametrize(("source", "target"), SHAPES)
def test_resize_equals_the_tap_sum(source, target):
    image = np.random.default_rng(sum(source) + sum(target)).random(source, dtype=np.float32)
    ours = resize(image, *target)
    assert ours.shape == target and ours.dtype == np.float32 and ours.flags.c_contiguous
    np.testing.assert_allclose(ours, _tap_resize(image, *target), rtol=0, atol=2e-6)


def test_resize_of_a_strided_view_equals_its_copy():
    """Heat maps are resized from crops of the input square (explain/geometry.py)."""
    image = np.random.default_rng(1).random((200, 240), dtype=np.float32)
    for view in (image[10:170, 30:190], image[::2, ::3], image.T, image.astype(np.float64)):
        np.testing.assert_array_equal(resize(view, 61, 47), resize(np.array(view), 61, 47))


def test_blocks_cut_along_the_other_axis_give_the_same_result(monkeypatch):
    """With a tiny thread limit every block is also cut along the other axis (what a film
    thousands of pixels wide needs); the pixels do not change."""
    image = np.random.default_rng(2).random((300, 260), dtype=np.float32)
    expected = {shape: resize(image, *shape) for shape in ((64, 64), (400, 90))}
    monkeypatch.setattr(resample, "SINGLE_THREAD_MNK", 500)
    resample._block_lines.cache_clear()
    try:
        for shape, want in expected.items():
            np.testing.assert_allclose(resize(image, *shape), want, rtol=0, atol=1e-6)
    finally:
        resample._block_lines.cache_clear()


def test_every_block_product_stays_under_the_blas_thread_limit():
    """No product wakes OpenBLAS's worker threads (trust/gate_forward.py explains why)."""
    cases = ((224, 160, 224), (2500, 160, 2048), (5, 2500, 2048), (160, 3000, 2500))
    for source, target, other in cases:
        lines = resample._block_lines(source, target, other)
        for _, _, lo, hi, weight in resample._blocks(source, target, lines, False):
            step = max(1, resample.SINGLE_THREAD_MNK // weight.size)
            assert weight.size * min(step, other) <= max(resample.SINGLE_THREAD_MNK, weight.size)
            assert weight.shape[1] == hi - lo


def test_block_cache_is_bounded_and_small():
    """The cached bands of a full-size film weigh little: about 64 x source floats."""
    assert resample._blocks.cache_info().maxsize is not None
    lines = resample._block_lines(3000, 224, 2500)
    held = sum(w.nbytes for *_, w in resample._blocks(3000, 224, lines, False))
    assert held < 2_000_000


def test_resize_matrix_is_the_pass_as_a_dense_product():
    for source, target in ((224, 160), (5, 160), (160, 5), (1, 4), (7, 7)):
        matrix = resize_matrix(source, target)
        assert matrix.shape == (target, source) and (matrix >= 0).all()
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
        image = np.random.default_rng(source).random((source, 3), dtype=np.float32)
        np.testing.assert_allclose(matrix @ image, resize(image, target, 3), atol=2e-6)


# torch's own float32 weights are rounded more coarsely (up to 1.5e-5 off when enlarging
# 160 px to a film), so the reference is torch in float64; and torch resizes a source one
# pixel wide differently from the same column of a wider image, so those are left out.
@pytest.mark.parametrize(("source", "target"), [s for s in SHAPES if min(s[0]) > 1])
def test_resize_matches_torch_in_float64(source, target):
    torch = pytest.importorskip("torch")
    image = np.random.default_rng(3).random(source, dtype=np.float32)
    theirs = torch.nn.functional.interpolate(
        torch.from_numpy(image.astype(np.float64))[None, None], size=target, mode="bilinear",
        antialias=True, align_corners=False,
    )[0, 0].numpy()  # fmt: skip
    np.testing.assert_allclose(resize(image, *target), theirs, rtol=0, atol=1e-6)


def test_bad_shapes_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="2-D"):
        resize(np.zeros((2, 3, 4)), 2, 2)
    with pytest.raises(ValueError, match="2-D"):
        resize(np.float32(1.0), 2, 2)
    with pytest.raises(ValueError, match="cannot resize"):
        resize(np.zeros((4, 4)), 0, 2)
