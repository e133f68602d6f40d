"""The model input made by normalising the equalisation table (256 values) instead of every
pixel, and the window applied in place, are bit for bit what the per-pixel steps made,
on real films of every pool and on random images (issue 28: the decode stage's CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.real_films import pool_films
from xraydesk.imaging.loader import load_xray
from xraydesk.imaging.xray import Window
from xraydesk.model.preprocessing import Preprocessing, equalize_histogram

POOLS = ("kermany-pediatric", "covid19-radiography", "ozturk-nih", "covid-cxnet")


def per_pixel_equalized(image: np.ndarray, bins: int = 256) -> np.ndarray:
    """``equalize_histogram`` as it was: every step on every pixel."""
    flat = image.reshape(-1).astype(np.float32)
    index = np.clip(np.rint(flat * (bins - 1)), 0, bins - 1).astype(np.int64)
    hist = np.bincount(index, minlength=bins).astype(np.float32)
    cdf = hist.cumsum(dtype=np.float32)
    first = cdf[hist > 0][0]
    total = cdf[-1]
    if total <= first:
        return image.astype(np.float32, copy=True)
    lut = np.clip((cdf - first) / (total - first), 0.0, 1.0).astype(np.float32)
    return lut[index].reshape(image.shape)


def per_pixel_finish(prep: Preprocessing, resized: np.ndarray) -> np.ndarray:
    """``Preprocessing.finish`` as it was: equalised, then each pixel normalised."""
    out = per_pixel_equalized(resized) if prep.equalize else resized.astype(np.float32)
    out = (out - np.float32(prep.mean)) / np.float32(prep.std)
    if prep.channels != 1:
        out = np.repeat(out, prep.channels, axis=0)
    return np.ascontiguousarray(out, dtype=np.float32)


def two_step_window(window: Window, values: np.ndarray) -> np.ndarray:
    width = max(float(window.width), 1e-6)
    out = (np.asarray(values, dtype=np.float32) - np.float32(window.low)) / np.float32(width)
    return np.clip(out, 0.0, 1.0, out=out)


PREPS = [
    Preprocessing(size=160, equalize=True, mean=0.5, std=0.25),
    Preprocessing(size=224, equalize=True, mean=0.485, std=0.229, channels=3),
    Preprocessing(size=96, resize="letterbox", equalize=True, mean=0.3, std=0.7),
    Preprocessing(size=128, equalize=False, mean=0.45, std=0.2),
]


@pytest.fixture(scope="module")
def films(shared_data: Path) -> list:
    paths = [p for pool in POOLS for p in pool_films(shared_data, 10, pool)]
    paths += sorted((shared_data / "samples" / "dicom").glob("*.dcm"))[:2]
    return [load_xray(p) for p in paths]


@pytest.mark.parametrize("prep", PREPS, ids=lambda p: f"{p.size}-{p.resize}-{p.equalize}")
def test_the_model_input_is_the_per_pixel_one_on_real_films(films, prep):
    for xray in films:
        unit = xray.render()
        windowed = two_step_window(xray.window, xray.pixels)
        assert np.array_equal(unit, 1.0 - windowed if xray.inverted else windowed)
        ours = prep.from_unit(unit)
        reference = per_pixel_finish(prep, prep.resize_unit(unit))
        assert ours.dtype == np.float32 and ours.flags.c_contiguous
        assert ours.tobytes() == reference.tobytes()


def test_equalisation_and_window_on_random_images():
    rng = np.random.default_rng(28)
    prep = PREPS[0]
    for n in range(200):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        kind = n % 4
        image = rng.random((h, w), dtype=np.float32)
        if kind == 1:
            image = np.round(image * 7) / 7  # few levels
        elif kind == 2:
            image[:] = image[0, 0]  # flat: left as it is
        elif kind == 3:
            image = image * 3 - 1  # outside [0, 1]: clipped bins
        assert equalize_histogram(image).tobytes() == per_pixel_equalized(image).tobytes()
        resized = image[None]
        assert prep.finish(resized).tobytes() == per_pixel_finish(prep, resized).tobytes()
        window = Window(float(rng.normal()), float(rng.random() * 3))
        values = image * 100 - 20
        assert window.apply(values).tobytes() == two_step_window(window, values).tobytes()
