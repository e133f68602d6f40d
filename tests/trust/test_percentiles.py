"""trust.percentiles.low_high gives np.percentile's own values, bit for bit, on random
images of every kind that trips a tail estimate (ties, constants, stripes in step with its
sample's stride, heavy tails, NaN), on real radiographs, and as the gate's blank check
reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.real_films import pool_films
from xraydesk.imaging.loader import load_xray
from xraydesk.trust.gate import image_statistics
from xraydesk.trust.percentiles import SAMPLE_STEP, low_high, mean, standard_deviation


def _same(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> None:
    expected = np.percentile(values, [low, high])
    got = low_high(values, low, high)
    assert np.array_equal(np.array(got), expected, equal_nan=True), (got, expected)


def _image(kind: int, rng: np.random.Generator) -> np.ndarray:
    h, w = (int(v) for v in rng.integers(1, 320, 2))
    if kind == 0:  # continuous values
        return rng.random((h, w)).astype(np.float32)
    if kind == 1:  # 8-bit levels: many ties
        return (np.round(rng.random((h, w)) * 255) / 255).astype(np.float32)
    if kind == 2:  # constant
        return np.full((h, w), rng.random(), np.float32)
    if kind == 3:  # the sample sees only bright pixels, or only dark ones
        image = np.full(h * w, float(rng.random() < 0.5), np.float32)
        image[::SAMPLE_STEP] = 1 - image[0]
        return image.reshape(h, w)
    if kind == 7:  # bright columns a sample's step apart
        return np.tile((np.arange(w) % SAMPLE_STEP == 0).astype(np.float32), (h, 1))
    if kind == 4:  # heavy tails
        return (rng.standard_normal((h, w)) ** 3).astype(np.float32)
    if kind == 5:  # nearly all one value
        return (rng.random((h, w)) < 0.995).astype(np.float32)
    return rng.random((h, w))  # float64


@pytest.mark.parametrize("kind", range(8))
def test_equals_numpy_on_random_images(kind):
    rng = np.random.default_rng(kind)
    for _ in range(150):
        _same(_image(kind, rng))


@pytest.mark.parametrize(("low", "high"), [(0.5, 99.5), (2.0, 98.0), (1.0, 65.0), (35.0, 99.7)])
def test_other_tails(low, high):
    rng = np.random.default_rng(7)
    for kind in range(8):
        _same(_image(kind, rng), low, high)
        _same(rng.random((224, 224)).astype(np.float32), low, high)


def test_nan_and_infinity_follow_numpy():
    image = np.random.default_rng(1).random((200, 200)).astype(np.float32)
    for value in (np.nan, np.inf, -np.inf):
        spoiled = image.copy()
        spoiled[3, 5] = value
        _same(spoiled)


def test_the_input_is_left_as_it_was():
    image = np.random.default_rng(2).random((224, 224)).astype(np.float32)
    before = image.copy()
    low_high(image)
    low_high(image[::2, ::3])
    np.testing.assert_array_equal(image, before)


def test_equals_numpy_on_real_films(shared_data: Path):
    pools = ("kermany-pediatric", "ozturk-nih")
    paths = [p for pool in pools for p in pool_films(shared_data, 8, pool)]
    paths += sorted((shared_data / "samples" / "dicom").glob("*.dcm"))[:2]
    for path in paths:
        unit = load_xray(path).render()
        step = max(1, max(unit.shape) // 512)
        sample = np.asarray(unit[::step, ::step], dtype=np.float32)  # as image_statistics
        _same(sample)
        assert image_statistics(unit) == [] or unit.shape[0] < 128


@pytest.mark.parametrize("kind", range(8))
def test_standard_deviation_and_mean_equal_numpy(kind):
    """``standard_deviation`` and ``mean`` are numpy's own values, bit for bit, on every
    kind of image, whole and strided, float32 and float64 (issue 28: the gate's checks
    call them on every image)."""
    rng = np.random.default_rng(100 + kind)
    for _ in range(60):
        image = _image(kind, rng)
        for values in (image, image[::3, ::2], image.astype(np.float32)):
            for ddof in (0, 1):
                expected = float(values.std(ddof=ddof)) if values.size > ddof else None
                if expected is not None:
                    got = standard_deviation(values, ddof)
                    assert got == expected or (np.isnan(got) and np.isnan(expected))
            assert mean(values) == values.mean() and mean(values).dtype == values.mean().dtype


def test_standard_deviation_leaves_other_types_to_numpy():
    values = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert standard_deviation(values) == float(values.std())
    assert mean(values) == values.mean()
    with pytest.warns(RuntimeWarning):
        assert np.isnan(standard_deviation(np.zeros(1, np.float32), ddof=1))
