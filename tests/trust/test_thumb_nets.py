"""trust.thumb_nets: the gate and the appearance heads joined into one network call give
what each gives alone, on real films (upright, turned, inverted, mirrored): logits within
1e-5, the same warnings, the same estimates; in OpenVINO and in numpy; and a network of
another kind still runs on its own (issue 28)."""

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
from xraydesk.trust.thumb_nets import ThumbNets

POOLS = ("kermany-pediatric", "covid19-radiography", "ozturk-nih", "covid-cxnet")
PER_POOL = 8
ATOL = 1e-5  # on logits


@pytest.fixture(scope="module")
def films(shared_data: Path) -> tuple[np.ndarray, list[list]]:
    """Thumbnails of real films as they are, turned, inverted and mirrored, with each
    film's statistics' warnings."""
    paths = [p for pool in POOLS for p in pool_films(shared_data, PER_POOL, pool)]
    units = [load_xray(p).render() for p in paths]
    upright = np.stack([unit_thumbnail(u) for u in units])
    variants = [upright, np.rot90(upright, 1, axes=(2, 3)), -upright, upright[..., ::-1]]
    thumbs = np.ascontiguousarray(np.concatenate(variants), np.float32)
    stats = [image_statistics(u) for u in units] * len(variants)
    return thumbs, stats


def _fresh(compile_after: int) -> tuple[InputGate, AppearanceHeads]:
    gate, heads = InputGate.load(), AppearanceHeads.load()
    gate.logits.compile_after = heads.logits.compile_after = compile_after
    return gate, heads


def _same_judgement(nets: ThumbNets, thumbs: np.ndarray, stats: list[list]) -> None:
    for n, thumb in enumerate(thumbs):  # one image a call, as the decode stage runs them
        gates, looks = nets.judge(thumb[None], [stats[n]])
        alone_gate = nets.gate.decide(thumb[None], [stats[n]])[0]
        alone_look = nets.heads.estimate(thumb[None])[0]
        assert gates[0].warnings == alone_gate.warnings
        assert gates[0].turns == alone_gate.turns
        for field in ("p_chest", "p_partial", "p_other", "p_turns", "p_inverted"):
            assert getattr(gates[0], field) == pytest.approx(getattr(alone_gate, field), abs=1e-5)
        assert looks[0].mirrored == alone_look.mirrored and looks[0].group == alone_look.group
        assert looks[0].p_mirrored == pytest.approx(alone_look.p_mirrored, abs=1e-5)
        assert looks[0].p_adult == pytest.approx(alone_look.p_adult, abs=1e-5)


@pytest.mark.skipif(not openvino_backend.installed(), reason="needs OpenVINO")
def test_one_compiled_model_gives_each_networks_logits(films):
    thumbs, stats = films
    gate, heads = _fresh(compile_after=0)
    nets = ThumbNets(gate, heads)
    joint = nets.joint
    assert isinstance(joint, GateRunner)
    together = np.concatenate([joint(t[None]) for t in thumbs])
    apart = np.concatenate(
        [np.concatenate([gate.logits(t[None]), heads.logits(t[None])], axis=1) for t in thumbs]
    )
    assert joint.runtime == gate.logits.runtime == heads.logits.runtime == "openvino"
    print(f"largest logit difference, joined vs apart: {np.abs(together - apart).max():.1e}")
    np.testing.assert_allclose(together, apart, atol=ATOL, rtol=0)
    _same_judgement(nets, thumbs, stats)


def test_before_compiling_the_joined_numpy_pass_is_each_networks(films):
    thumbs, stats = films
    gate, heads = _fresh(compile_after=10**9)
    nets = ThumbNets(gate, heads)
    together = nets.joint(thumbs)
    assert nets.joint.runtime == "numpy"
    apart = np.concatenate([gate.logits.fallback(thumbs), heads.logits.fallback(thumbs)], axis=1)
    np.testing.assert_array_equal(together, apart)
    _same_judgement(nets, thumbs[:8], stats[:8])


def test_a_network_of_another_kind_runs_on_its_own(films):
    thumbs, stats = films
    gate, heads = _fresh(compile_after=10**9)
    calls = []

    def counted(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return gate.logits.fallback(x)

    nets = ThumbNets(InputGate(counted, serialize=True), heads)
    assert nets.joint is None
    gates, looks = nets.judge(thumbs[:3], stats[:3])
    assert calls == [3] and len(gates) == len(looks) == 3
    assert [g.warnings for g in gates] == [g.warnings for g in gate.decide(thumbs[:3], stats[:3])]


def test_the_shipped_pair_is_joined_once_per_process():
    gate, heads = InputGate.default(), AppearanceHeads.default()
    assert ThumbNets(gate, heads).joint is ThumbNets(gate, heads).joint
