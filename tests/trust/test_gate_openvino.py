"""The input gate and the appearance heads as the app loads them (OpenVINO fp32 where it is
installed, ``runtime.gate_graph``) judge real radiographs exactly as the numpy pass does:
logits within 1e-4, the same verdicts, at batch 1 and 8, on films upright, turned a
quarter, inverted and mirrored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.real_films import pool_films
from xraydesk.imaging.loader import load_xray
from xraydesk.runtime import openvino_backend
from xraydesk.runtime.gate_graph import GateRunner
from xraydesk.trust.appearance import AppearanceHeads
from xraydesk.trust.gate import InputGate, image_statistics, unit_thumbnail

pytestmark = pytest.mark.skipif(not openvino_backend.installed(), reason="needs OpenVINO")

ATOL = 1e-4  # on logits
POOLS = ("kermany-pediatric", "covid19-radiography", "ozturk-nih", "covid-cxnet")
PER_POOL = 6


@pytest.fixture(scope="module")
def units(shared_data: Path) -> list[np.ndarray]:
    """Rendered films: the first of each pool's manifest, and the full-size samples."""
    paths = [p for pool in POOLS for p in pool_films(shared_data, PER_POOL, pool)]
    paths += sorted((shared_data / "samples" / "fullres").glob("*.png"))[:2]
    paths += sorted((shared_data / "samples" / "dicom").glob("*.dcm"))[:2]
    return [load_xray(p).render() for p in paths]


@pytest.fixture(scope="module")
def thumbs(units: list[np.ndarray]) -> np.ndarray:
    """Each film's thumbnail as it is, turned a quarter, inverted and mirrored: every
    head's regime."""
    upright = np.stack([unit_thumbnail(u) for u in units])
    variants = [upright, np.rot90(upright, 1, axes=(2, 3)), -upright, upright[..., ::-1]]
    return np.ascontiguousarray(np.concatenate(variants), np.float32)


def _compiled(runner: GateRunner) -> GateRunner:
    runner.compile_after = 0
    runner(np.zeros((1, 1, 64, 64), np.float32))
    assert runner.runtime == "openvino"
    return runner


def _in_batches(function, thumbs: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([function(thumbs[i : i + batch]) for i in range(0, len(thumbs), batch)])


@pytest.mark.parametrize("batch", [1, 8])
def test_the_gate_judges_real_films_as_numpy_does(units, thumbs, batch):
    fast = InputGate.load()
    runner = _compiled(fast.logits)
    slow = InputGate(runner.fallback, fast.info, serialize=False)
    ours = _in_batches(runner, thumbs, batch)
    reference = _in_batches(runner.fallback, thumbs, batch)
    print(f"gate, batch {batch}: largest logit difference {np.abs(ours - reference).max():.2e}")
    np.testing.assert_allclose(ours, reference, atol=ATOL, rtol=0)
    stats = [image_statistics(u) for u in units] * 4
    for start in range(0, len(thumbs), batch):
        part, part_stats = thumbs[start : start + batch], stats[start : start + batch]
        for a, b in zip(fast.decide(part, part_stats), slow.decide(part, part_stats), strict=True):
            assert (a.codes, a.turns, a.correctable) == (b.codes, b.turns, b.correctable)
            assert a.p_other == pytest.approx(b.p_other, abs=1e-5)
    verdicts = {tuple(r.codes) for r in fast.decide(thumbs, stats)}
    assert len(verdicts) > 1  # the films and their variants are not all judged alike


@pytest.mark.parametrize("batch", [1, 8])
def test_the_appearance_heads_judge_real_films_as_numpy_does(thumbs, batch):
    fast = AppearanceHeads.load()
    runner = _compiled(fast.logits)
    slow = AppearanceHeads(runner.fallback, fast.info)
    ours = _in_batches(runner, thumbs, batch)
    reference = _in_batches(runner.fallback, thumbs, batch)
    print(f"appearance, batch {batch}: largest difference {np.abs(ours - reference).max():.2e}")
    np.testing.assert_allclose(ours, reference, atol=ATOL, rtol=0)
    ours_looks = _in_batches_list(fast.estimate, thumbs, batch)
    numpy_looks = _in_batches_list(slow.estimate, thumbs, batch)
    assert [(a.mirrored, a.group) for a in ours_looks] == [
        (a.mirrored, a.group) for a in numpy_looks
    ]
    assert {a.mirrored for a in ours_looks} == {True, False}
    assert {a.group for a in ours_looks} == {"adult", "young child"}


def _in_batches_list(function, thumbs: np.ndarray, batch: int) -> list:
    return [r for i in range(0, len(thumbs), batch) for r in function(thumbs[i : i + batch])]


def test_the_shipped_loaders_pick_the_runner():
    """Both loaders hand their networks to ``GateWeights.runner``: OpenVINO once a run
    has seen its first images, numpy before."""
    for network in (InputGate.load().logits, AppearanceHeads.load().logits):
        assert isinstance(network, GateRunner) and network.runtime == "numpy"
        assert network.compile_after > 0
