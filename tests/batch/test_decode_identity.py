"""The batch engine's decode stage (``batch.prepare.Preparer``), after issue 28's CPU cuts,
gives what the stage's old definition gave on real films: the same model input bytes, the
same thumbnail, the same gate warnings and appearance estimates (probabilities within
1e-5), film by film. The reference below is the old stage step by step: the window in two
steps, ``np.percentile`` and ``np.std`` in the blank check, the thumbnail standardised by
numpy's std and mean, the gate and the appearance heads as two separate networks, and
the histogram equalised and normalised pixel by pixel."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tests.real_films import pool_films
from xraydesk.batch.prepare import Preparer
from xraydesk.imaging.loader import load_xray
from xraydesk.imaging.resample import resize
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.trust.appearance import AppearanceHeads
from xraydesk.trust.codes import LOW_QUALITY, NOT_CHEST, ResultWarning
from xraydesk.trust.gate import InputGate, image_statistics, unit_thumbnail, view_warnings

POOLS = {"kermany-pediatric": 40, "covid19-radiography": 20, "ozturk-nih": 8, "covid-cxnet": 8}
PREP = Preprocessing(size=160, equalize=True, mean=0.5, std=0.25)  # chest-3class's


def old_render(xray) -> np.ndarray:
    window = xray.window
    width = max(float(window.width), 1e-6)
    out = (np.asarray(xray.pixels, np.float32) - np.float32(window.low)) / np.float32(width)
    out = np.clip(out, 0.0, 1.0, out=out)
    return 1.0 - out if xray.inverted else out


def old_thumbnail(unit: np.ndarray) -> np.ndarray:
    thumb = resize(np.asarray(unit, dtype=np.float32), 64, 64)[None]
    std = max(float(thumb.std(ddof=1)), 1e-3)
    return np.clip((thumb - thumb.mean()) / np.float32(std), -4.0, 4.0).astype(np.float32)


def old_statistics(unit: np.ndarray) -> list[ResultWarning]:
    """The blank and noise checks as they were; the size check (unchanged) is the gate's."""
    height, width = unit.shape
    found = [w for w in image_statistics(unit) if w.code == LOW_QUALITY]
    step = max(1, max(height, width) // 512)
    sample = np.asarray(unit[::step, ::step], dtype=np.float32)
    low, high = np.percentile(sample, [1, 99])
    if float(high - low) < 0.04 or float(sample.std()) < 0.02:
        found.append(
            ResultWarning(NOT_CHEST, "the image is blank or nearly uniform: not a radiograph")
        )
        return found
    a = sample[:, :-1].astype(np.float32).ravel()
    b = sample[:, 1:].astype(np.float32).ravel()
    a -= a.mean()
    b -= b.mean()
    aa, bb = float(a @ a), float(b @ b)
    flat = min(aa, bb) < 1e-12 * a.size
    if not flat and float(a @ b) / math.sqrt(aa * bb) < 0.3:
        found.append(ResultWarning(NOT_CHEST, "the image is mostly pixel noise: not a radiograph"))
    return found


def old_tensor(unit: np.ndarray) -> np.ndarray:
    resized = PREP.resize_unit(unit)
    flat = resized.reshape(-1).astype(np.float32)
    index = np.clip(np.rint(flat * 255), 0, 255).astype(np.int64)
    hist = np.bincount(index, minlength=256).astype(np.float32)
    cdf = hist.cumsum(dtype=np.float32)
    first, total = cdf[hist > 0][0], cdf[-1]
    if total <= first:  # a flat image stays as it is
        out = resized.astype(np.float32, copy=True)
    else:
        lut = np.clip((cdf - first) / (total - first), 0.0, 1.0).astype(np.float32)
        out = lut[index].reshape(resized.shape)
    return np.ascontiguousarray((out - np.float32(0.5)) / np.float32(0.25), dtype=np.float32)


@pytest.fixture(scope="module")
def films(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Films of every pool, and a few turned a quarter or inverted (PNG copies in a
    temporary folder) so that the gate's warnings are exercised too."""
    paths = [p for pool, count in POOLS.items() for p in pool_films(shared_data, count, pool)]
    folder = tmp_path_factory.mktemp("turned")
    for n, source in enumerate(paths[:12]):
        image = Image.open(source).convert("L")
        image = image.rotate(90, expand=True) if n % 2 else Image.eval(image, lambda v: 255 - v)
        image.save(folder / f"film-{n}.png")
        paths.append(folder / f"film-{n}.png")
    rng = np.random.default_rng(28)  # and the statistics' own cases: blank, noise, small
    for name, pixels in (
        ("blank", np.full((256, 256), 128, np.uint8)),
        ("noise", rng.integers(0, 256, (256, 256), dtype=np.uint8)),
        ("small", np.asarray(Image.open(paths[0]).convert("L").resize((100, 90)))),
    ):
        Image.fromarray(pixels).save(folder / f"{name}.png")
        paths.append(folder / f"{name}.png")
    return paths


def test_the_stage_is_its_old_definition_on_real_films(films):
    stage = Preparer(
        SimpleNamespace(preprocessing=PREP, card=SimpleNamespace(label="chest-3class")),
        None,
        "identity",
        threading.Event(),
    )
    gate, heads = InputGate.default(), AppearanceHeads.default()
    codes = set()
    for path in films:  # more than gate_graph.COMPILE_AFTER: numpy first, then OpenVINO
        prepared = stage(path)
        assert prepared.row is None, prepared.row
        xray = load_xray(path)
        unit = old_render(xray)
        assert np.array_equal(xray.render(), unit)
        thumb = old_thumbnail(unit)
        assert unit_thumbnail(unit).tobytes() == thumb.tobytes()
        verdict = gate.decide(thumb[None], [old_statistics(unit)], [view_warnings(xray)])[0]
        look = heads.estimate(thumb[None])[0]
        assert prepared.tensor.tobytes() == old_tensor(unit).tobytes(), path.name
        assert prepared.warnings == list(verdict.warnings), path.name
        assert prepared.appearance.p_mirrored == pytest.approx(look.p_mirrored, abs=1e-5)
        assert prepared.appearance.p_adult == pytest.approx(look.p_adult, abs=1e-5)
        assert prepared.appearance.group == look.group
        assert prepared.appearance.mirrored == look.mirrored
        codes |= {w.code for w in verdict.warnings}
    assert stage.nets.joint.runtime == "openvino" or stage.nets.joint.numpy_only
    print(f"{len(films)} films; gate warnings seen: {sorted(codes)}")
    assert {"rotated", "inverted", "not_chest", "low_quality"} <= codes, codes


def test_large_files_take_the_path_and_give_the_same(films, monkeypatch):
    """A file over ``IN_MEMORY_BYTES`` is hashed in chunks and decoded from its path: the
    same hash (``content_hash``'s) and the same input as from the bytes read once."""
    from xraydesk.batch import prepare
    from xraydesk.files import sha256_file

    stage = Preparer(
        SimpleNamespace(preprocessing=PREP, card=SimpleNamespace(label="chest-3class")),
        None,
        "identity",
        threading.Event(),
    )
    sample = films[:3] + films[-3:]
    in_memory = [stage(path) for path in sample]
    monkeypatch.setattr(prepare, "IN_MEMORY_BYTES", 0)
    for path, once in zip(sample, in_memory, strict=True):
        again = stage(path)
        assert once.sha256 == again.sha256 == sha256_file(path)
        assert once.tensor.tobytes() == again.tensor.tobytes()
        assert once.warnings == again.warnings


def test_a_file_that_grew_after_its_stat_is_not_read_whole(tmp_path, monkeypatch):
    """The size from ``check_file`` may be stale (a file still being written): the read is
    bounded by ``IN_MEMORY_BYTES`` and a longer file is hashed in chunks, whole, instead."""
    from xraydesk.batch import prepare
    from xraydesk.files import sha256_file

    grown = tmp_path / "grown.png"
    grown.write_bytes(bytes(range(256)) * 8)  # 2,048 bytes now; 10 when it was looked at
    monkeypatch.setattr(prepare, "IN_MEMORY_BYTES", 1_000)
    sha, data = prepare._hashed(grown, 10)
    assert data is None and sha == sha256_file(grown)
    small = tmp_path / "small.png"
    small.write_bytes(b"x" * 500)
    sha, data = prepare._hashed(small, 500)
    assert data == b"x" * 500 and sha == sha256_file(small)
