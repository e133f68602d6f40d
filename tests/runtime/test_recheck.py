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
    recheck_threshold,
    uncertain_rows,
)

TEMPERATURE = 0.7588  # chest-3class's


@pytest.mark.parametrize("logit_error", [0.01, 0.05, 0.2])
def test_a_kept_row_moves_by_at_most_the_budget(logit_error):
    """Whatever the rounding does to each logit within the error, the probabilities of a
    row that is not run again move by at most the budget: worst cases included (every
    logit moved by +-E in the directions that hurt most)."""
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 3, size=(20000, 3)) * rng.uniform(0.1, 3, size=(20000, 1))
    threshold = recheck_threshold(logit_error, TEMPERATURE)
    kept = ~uncertain_rows(logits, TEMPERATURE, threshold)
    assert 0 < kept.sum() < len(kept)  # some of each
    exact = softmax(logits[kept], TEMPERATURE)
    signs = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1], [1, -1, 1]])
    worst = 0.0
    for sign in signs:
        for flip in (1, -1):
            moved = softmax(logits[kept] + flip * sign * logit_error, TEMPERATURE)
            worst = max(worst, float(np.abs(moved - exact).max()))
    moved = softmax(logits[kept] + rng.uniform(-1, 1, size=exact.shape) * logit_error, TEMPERATURE)
    worst = max(worst, float(np.abs(moved - exact).max()))
    assert worst <= BUDGET


def test_no_measured_error_runs_nothing_again():
    logits = np.array([[0.0, 0.0, 0.0]])
    assert not uncertain_rows(logits, 1.0, recheck_threshold(0.0, 1.0)).any()


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

    def make_exact() -> Backend:
        built.append(Fixed("fp32", 1.001))
        return built[-1]

    backend = RecheckedBackend(fast, make_exact, 1.0, recheck_threshold(0.05, 1.0))
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
