"""bf16 with its uncertain rows run again at fp32 (``xraydesk.runtime.recheck``): the bound
it relies on, and that only those rows are run again."""

from __future__ import annotations

import numpy as np
import pytest

from xraydesk.model.probabilities import softmax
from xraydesk.runtime.backend import Backend, Outputs
from xraydesk.runtime.recheck import (
    BUDGET,
    RecheckedBackend,
    difference_error,
    probability_bound,
    uncertain_rows,
)

TEMPERATURE = 0.7588  # chest-3class's


def _logits(n: int = 20000, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 3, size=(n, 3)) * rng.uniform(0.1, 3, size=(n, 1))


def _worst_moves(logits: np.ndarray, error: float) -> np.ndarray:
    """(N,) the largest probability change over the perturbations whose logit differences
    stay within ``error``: every logit +-error/2 in every sign pattern (the corners, where
    the worst case lies), and random ones inside."""
    exact = softmax(logits, TEMPERATURE)
    worst = np.zeros(len(logits))
    for sign in np.array(np.meshgrid(*[[1, -1]] * logits.shape[1])).T.reshape(-1, logits.shape[1]):
        moved = softmax(logits + sign * error / 2, TEMPERATURE)
        worst = np.maximum(worst, np.abs(moved - exact).max(axis=1))
    rng = np.random.default_rng(3)
    moved = softmax(logits + rng.uniform(-0.5, 0.5, logits.shape) * error, TEMPERATURE)
    return np.maximum(worst, np.abs(moved - exact).max(axis=1))


@pytest.mark.parametrize("error", [0.05, 0.1, 0.3])
def test_a_kept_row_moves_by_at_most_the_budget(error):
    """Whatever the rounding does within the measured logit-difference error, the
    probabilities of a row that is not run again move by at most the budget: worst cases
    included. (Below D = 0.04 at this temperature no row can move by the budget at all.)"""
    logits = _logits()
    kept = ~uncertain_rows(logits, TEMPERATURE, error)
    assert 0 < kept.sum() < len(kept)  # some of each
    assert _worst_moves(logits[kept], error).max() <= BUDGET


@pytest.mark.parametrize("error", [0.01, 0.05, 0.2])
def test_the_bound_holds_for_every_row_and_is_attained(error):
    """``probability_bound`` is never exceeded, and it is the worst case itself (not a
    loose over-estimate): the corner perturbations reach it to rounding."""
    logits = _logits(3000)
    bound, worst = probability_bound(logits, TEMPERATURE, error), _worst_moves(logits, error)
    assert np.all(worst <= bound + 1e-12)
    np.testing.assert_allclose(worst, bound, rtol=1e-6, atol=1e-12)


def test_the_bound_is_never_looser_than_the_one_it_replaced():
    """The old rule ran a row again when ``min(p, 1 - p) > budget / (exp(2 E / T) - 1)``
    (E: the largest single-logit error). Any single-logit error E gives difference errors
    of at most 2 E, and with D = 2 E the new rule runs a subset of those rows again."""
    logits = _logits()
    p = softmax(logits, TEMPERATURE)
    for e in (0.005, 0.0414, 0.1):
        old = np.minimum(p, 1 - p).max(axis=1) > BUDGET / np.expm1(2 * e / TEMPERATURE)
        new = uncertain_rows(logits, TEMPERATURE, 2 * e)
        assert not np.any(new & ~old)
        assert new.sum() < old.sum() or old.sum() == 0  # strictly fewer where any


def test_difference_error_ignores_what_softmax_ignores():
    """A shift common to a row's logits changes no probability: it is no error; a shift
    of one logit against the others is."""
    exact = _logits(50)
    assert difference_error(exact + 3.0, exact) == pytest.approx(0.0, abs=1e-12)
    moved = exact.copy()
    moved[7, 1] += 0.02
    moved[9] += [0.01, -0.01, 0.0]
    assert difference_error(moved, exact) == pytest.approx(0.02)


def test_no_measured_error_runs_nothing_again():
    logits = np.array([[0.0, 0.0, 0.0]])
    assert not uncertain_rows(logits, 1.0, 0.0).any()


class Fixed(Backend):
    """Outputs made from the inputs: logits the first column's mean times ``scale``."""

    runtime = "openvino"

    def __init__(self, precision: str, scale: float) -> None:
        self.precision = precision  # type: ignore[assignment]
        self.scale = scale
        self.rows: list[int] = []

    def run(self, batch, activations: bool = True) -> Outputs:
        x = np.asarray(batch, dtype=np.float32)
        self.rows.append(len(x))
        m = x.reshape(len(x), -1).mean(axis=1, keepdims=True)
        logits = np.concatenate([m * 10, -m * 10, np.zeros_like(m)], axis=1) * self.scale
        features = np.repeat(m, 4, axis=1) * self.scale
        maps = np.repeat(m, 8, axis=1).reshape(len(x), 2, 2, 2) * self.scale
        kept = maps.astype(np.float32) if activations else None
        return Outputs(logits.astype(np.float32), features.astype(np.float32), kept)


def test_only_the_uncertain_rows_are_run_again_and_the_rest_kept():
    fast, built = Fixed("bf16", 1.0), []

    def make_exact(mode: str | None) -> Backend:
        built.append(Fixed("fp32", 1.001))
        return built[-1]

    backend = RecheckedBackend(fast, make_exact, 1.0, 0.05)
    sure = np.full((2, 1, 4, 4), 1.0, np.float32)  # logits (10, -10, 0): certain
    assert backend.run(sure).logits.shape == (2, 3) and not built  # fp32 never built
    unsure = np.full((1, 1, 4, 4), 0.02, np.float32)  # logits (0.2, -0.2, 0): uncertain
    batch = np.concatenate([sure[:1], unsure, sure[1:]])
    out = backend.run(batch)
    assert len(built) == 1 and built[0].rows == [1]  # only the uncertain row, once
    np.testing.assert_allclose(out.logits[1], fast.run(unsure).logits[0] * 1.001, rtol=1e-6)
    np.testing.assert_allclose(out.logits[[0, 2]], fast.run(sure).logits)
    assert out.features[1, 0] == pytest.approx(0.02 * 1.001)
    assert out.activations is not None and out.activations[1].max() == pytest.approx(0.02 * 1.001)
    assert out.activations[0].max() == pytest.approx(1.0)
    assert backend.rows_rechecked == 1 and backend.rows_run == 5
    assert backend.run(batch, activations=False).activations is None
    assert "fp32 where uncertain" in backend.label


def test_many_uncertain_rows_are_run_again_in_chunks_in_order():
    """The exact backend sees at most RECHECK_CHUNK rows at once (its buffers stay small
    in a long batch run), and every row still gets its own exact answer, in order."""
    from xraydesk.runtime.recheck import RECHECK_CHUNK

    fast, built = Fixed("bf16", 1.0), []

    def make_exact(mode: str | None) -> Backend:
        built.append(Fixed("fp32", 1.001))
        return built[-1]

    backend = RecheckedBackend(fast, make_exact, 1.0, 0.05)
    n = 2 * RECHECK_CHUNK + 3
    unsure = np.linspace(0.001, 0.03, n, dtype=np.float32)[:, None, None, None]
    batch = np.broadcast_to(unsure, (n, 1, 4, 4)).copy()
    out = backend.run(batch)
    assert built[0].rows == [RECHECK_CHUNK, RECHECK_CHUNK, 3]
    np.testing.assert_allclose(out.logits, fast.run(batch).logits * 1.001, rtol=1e-5)
    assert out.activations is not None and out.activations.shape == (n, 2, 2, 2)
    np.testing.assert_allclose(out.features[:, 0], unsure.ravel() * 1.001, rtol=1e-5)
