"""bf16 where its rounding cannot move a probability past the bar, fp32 where it could.

bf16 moves each logit a little: by at most ``E``, measured as the largest difference from
fp32 torch over the model's *validation* split (``bench_runtime`` stores it with the
verdict). Whatever that perturbation, a class probability of ``softmax(z / T)`` changes by
at most ``min(p, 1 - p) * (exp(2 E / T) - 1)``: the log of every probability moves by at
most ``2 E / T``, and so does the log of the sum of the others. A row whose probabilities
are all near 0 or 1 cannot move much, so its bf16 answer is kept; any other row is run
again at fp32. The budget is half the faithfulness bar's maximum (0.01), which leaves room
for test images whose bf16 error is larger than the validation split's (up to about twice
as large before the bar's 0.02 could be reached).

Measured on chest-3class (AMD Zen 4, 2 cores): a third of its test images are run again,
and the whole is faithful (see the verdicts) and faster than fp32 alone. The selection
(``select``) uses it only where its verdict on the whole test split passed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from xraydesk.model.probabilities import softmax
from xraydesk.optional import float32_array
from xraydesk.runtime.backend import Backend, Outputs, Precision
from xraydesk.runtime.faithful import BAR

BUDGET = BAR.max_abs / 2


def recheck_threshold(logit_error: float, temperature: float, budget: float = BUDGET) -> float:
    """The largest ``min(p, 1 - p)`` of a row whose reduced-precision answer is kept."""
    if logit_error <= 0:
        return 0.5  # no measured error: nothing to run again (min(p, 1 - p) <= 0.5)
    return budget / math.expm1(2 * logit_error / temperature)


def uncertain_rows(logits: np.ndarray, temperature: float, threshold: float) -> np.ndarray:
    """Rows (N,) whose probabilities rounding could move by more than the budget."""
    p = softmax(logits, temperature)
    return np.minimum(p, 1 - p).max(axis=1) > threshold


class RecheckedBackend(Backend):
    """``fast`` (bf16) for every row, ``exact`` (fp32, built at its first use) again for
    the uncertain ones; thread-safe as both backends are."""

    def __init__(
        self,
        fast: Backend,
        exact: Callable[[], Backend],
        temperature: float,
        threshold: float,
    ) -> None:
        self.fast = fast
        self.runtime = fast.runtime
        self.precision: Precision = fast.precision
        self.temperature = temperature
        self.threshold = threshold
        self._make_exact = exact
        self._exact: Backend | None = None
        self._lock = threading.Lock()
        self.rows_run = 0  # counts, for the benchmark and the tests
        self.rows_rechecked = 0

    @property
    def label(self) -> str:
        return f"{self.fast.label}, fp32 where uncertain"

    def exact(self) -> Backend:
        with self._lock:
            if self._exact is None:
                self._exact = self._make_exact()
            return self._exact

    def run(self, batch, activations: bool = True) -> Outputs:
        out = self.fast.run(batch, activations)
        rows = uncertain_rows(out.logits, self.temperature, self.threshold)
        self.rows_run += len(rows)
        if not rows.any():
            return out
        self.rows_rechecked += int(rows.sum())
        again = self.exact().run(float32_array(batch)[rows], activations)
        logits, features = out.logits.copy(), out.features.copy()
        logits[rows], features[rows] = again.logits, again.features
        maps = out.activations
        if maps is not None and again.activations is not None:
            maps = maps.copy()
            maps[rows] = again.activations
        return Outputs(logits, features, maps)
