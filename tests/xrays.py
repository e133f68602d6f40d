"""X-rays for tests: synthetic ones built in memory, and the names of real test-split
radiographs (read in place from ../shared/data, never copied into the repository)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.paths import MODELS_DIR
from xraydesk.imaging.xray import ImageMetadata, Window, XRay

# the bundled chest model's split: its test rows were never seen by that model or the gate
CHEST_SPLIT = MODELS_DIR / "chest-3class" / "split.csv"


def synthetic_xray(shape=(300, 240), bits=12, seed=0) -> XRay:
    """A smooth pattern with noise at ``bits`` bits: any model runs on it, none is sure."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    pixels = (2**bits - 1) * (0.5 + 0.3 * np.sin(xx / 17.0) * np.cos(yy / 23.0))
    pixels = (pixels + rng.normal(0, 40, shape)).clip(0, 2**bits - 1).astype(np.float32)
    return XRay(
        pixels=pixels,
        bits_stored=bits,
        window=Window.from_range(0, 2**bits - 1),
        metadata=ImageMetadata(path=Path("synthetic.png"), format="PNG"),
    )


def xray_from_pixels(pixels: np.ndarray, name: str = "x.png", view: str | None = None) -> XRay:
    """An 8-bit PNG-like XRay of ``pixels``, windowed to their range."""
    pixels = np.asarray(pixels, dtype=np.float32)
    return XRay(
        pixels=pixels,
        bits_stored=8,
        window=Window.from_range(float(pixels.min()), float(pixels.max()) or 1.0),
        metadata=ImageMetadata(path=Path(name), format="PNG", view_position=view),
    )


def split_test_paths(count: int) -> list[str]:
    """The first test-split images of each pool (the gate never trained on any of them)."""
    rows = [r for r in csv.DictReader(CHEST_SPLIT.open()) if r["split"] == "test"]
    by_pool: dict[str, list[str]] = {}
    for r in rows:
        by_pool.setdefault(r["source"], []).append(r["path"])
    picked: list[str] = []
    while len(picked) < count:
        for paths in by_pool.values():
            if paths and len(picked) < count:
                picked.append(paths.pop(0))
    return picked
