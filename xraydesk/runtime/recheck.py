"""Reduced precision where its rounding cannot move a probability past the bar, fp32 where
it could.

The bound. Softmax sees only differences of logits: ``p_i = 1 / (1 + S_i)`` with
``S_i = sum_{j != i} exp((z_j - z_i) / T)``. Let ``D`` be the largest error, against fp32,
of any logit *difference* ``z_j - z_i`` (``difference_error``), measured on the model's
*validation* split and stored with the verdict (``bench_runtime``). Each term of ``S_i``
is then off by a factor within ``exp(+-D / T)``, so ``S_i`` is too, so the log-odds
``r_i = log(p_i / (1 - p_i)) = -log S_i`` is off by at most ``eps = D / T``, and the
exact probability lies between ``sigmoid(r_i - eps)`` and ``sigmoid(r_i + eps)`` of the
row's reduced-precision ``r_i`` (``probability_bound``: the worst case, attained when
every difference is off by ``D`` the same way). A row whose bound stays within the
budget keeps its reduced-precision answer; any other row is run again at fp32.

Tighter than the bound it replaces (``min(p, 1 - p) * (exp(2 E / T) - 1)`` from the
largest single-logit error ``E``), both exact rather than estimated: ``D <= 2 E`` always
(less where rounding moves a row's logits together; measured on chest-3class it does
not: plain bf16's D was 0.040 for E = 0.0205), and the sigmoid's slope ``p (1 - p)``
replaces ``min(p, 1 - p)``, half as large at ``p = 0.5``.

The budget is half the faithfulness bar's maximum (0.01): room for test images whose
error exceeds the validation split's (up to about twice as large before the bar's 0.02
could be reached). The bar itself is checked on the whole test split by the verdict.

Measured on chest-3class (Intel Xeon family 6 model 207 with AMX, 2 cores, loaded;
tests/benchmarks/bench_bf16_sources.py and bench_runtime.py): with the stem at fp32
(``mixed``, which halves bf16's error) D = 0.0334 on the 1,387 validation images, and
7.9 % of the 2,778 test images are run again (max 0.0056 against fp32 torch); before,
with plain bf16's E = 0.0414 and the old bound, 35 %. The mixed graph passes the bar on
its own (max 0.0074), so ``select`` runs it without the recheck; the rechecked path is
the next step, for weights whose mixed graph would not pass. Either is used only where
its verdict on the whole test split passed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from xraydesk.model.probabilities import softmax
from xraydesk.optional import float32_array
from xraydesk.runtime.backend import Backend, Outputs, Precision
from xraydesk.runtime.faithful import BAR

BUDGET = BAR.max_abs / 2


def difference_error(logits: np.ndarray, exact: np.ndarray) -> float:
    """``D``: the largest error of a logit difference, ``max |(z_j - z_i) - (x_j - x_i)|``
    over rows and class pairs, of ``logits`` against the fp32 ``exact`` ones."""
    err = np.asarray(logits, np.float64) - np.asarray(exact, np.float64)
    if err.size == 0:
        return 0.0
    return float((err.max(axis=1) - err.min(axis=1)).max())


def probability_bound(logits: np.ndarray, temperature: float, error: float) -> np.ndarray:
    """(N,): the most any probability of each row can differ from fp32's, when every logit
    difference is off by at most ``error`` (the module's docstring)."""
    p = np.clip(softmax(np.asarray(logits, np.float64), temperature), 1e-300, 1.0)
    if error <= 0:
        return np.zeros(len(p))
    eps = error / temperature
    with np.errstate(divide="ignore"):
        odds = np.log(p) - np.log1p(-np.minimum(p, 1 - 1e-16))
    up = 1 / (1 + np.exp(-(odds + eps))) - p
    down = p - 1 / (1 + np.exp(-(odds - eps)))
    return np.maximum(up, down).max(axis=1)


def uncertain_rows(
    logits: np.ndarray, temperature: float, error: float, budget: float = BUDGET
) -> np.ndarray:
    """Rows (N,) whose probabilities rounding could move by more than the budget."""
    return probability_bound(logits, temperature, error) > budget


RECHECK_CHUNK = 8  # rows the exact backend runs at once (``_exact_in_chunks``)


class RecheckedBackend(Backend):
    """``fast`` (reduced precision) for every row, ``exact`` (fp32, built at its first
    use) again for the uncertain ones; ``error``: the measured ``D`` of ``fast``.
    Thread-safe as both backends are.

    ``exact`` is called with ``fast``'s OpenVINO mode (None for a runtime without modes),
    so the twin in another mode (``in_mode``) builds its own exact backend in that mode,
    from the same recipe, once and only if a row is ever uncertain."""

    def __init__(
        self,
        fast: Backend,
        exact: Callable[[str | None], Backend],
        temperature: float,
        error: float,
    ) -> None:
        self.fast = fast
        self.runtime = fast.runtime
        self.precision: Precision = fast.precision
        self.mode = fast.mode
        self.temperature = temperature
        self.error = error
        self._make_exact = exact
        self._exact: Backend | None = None
        self._lock = threading.Lock()
        self.rows_run = 0  # counts, for the benchmark and the tests
        self.rows_rechecked = 0

    @property
    def label(self) -> str:
        return f"{self.fast.label}, fp32 where uncertain"

    def in_mode(self, mode: str) -> Backend:
        """``fast``'s twin in ``mode``, rechecked by an exact backend built in ``mode`` at
        its first use; itself where ``fast`` is already in ``mode`` (or has no modes)."""
        if self.mode in (None, mode):
            return self
        fast = self.fast.in_mode(mode)
        return RecheckedBackend(fast, self._make_exact, self.temperature, self.error)

    def exact(self) -> Backend:
        with self._lock:
            if self._exact is None:
                self._exact = self._make_exact(self.mode)
            return self._exact

    def run(self, batch, activations: bool = True) -> Outputs:
        out = self.fast.run(batch, activations)
        rows = uncertain_rows(out.logits, self.temperature, self.error)
        self.rows_run += len(rows)
        if not rows.any():
            return out
        self.rows_rechecked += int(rows.sum())
        again = self._exact_in_chunks(float32_array(batch)[rows], activations)
        logits, features = out.logits.copy(), out.features.copy()
        logits[rows], features[rows] = again.logits, again.features
        maps = out.activations
        if maps is not None and again.activations is not None:
            maps = maps.copy()
            maps[rows] = again.activations
        return Outputs(logits, features, maps)

    def _exact_in_chunks(self, rows: np.ndarray, activations: bool) -> Outputs:
        """The exact backend on ``rows``, at most ``RECHECK_CHUNK`` at a time.

        Why: OpenVINO sizes a request's buffers for the largest batch it ran and keeps
        them, so rerunning 32 rows at once grew a batch run's memory by about 256 MiB
        where 8 cost about 40 MiB (measured with tests/benchmarks/bench_batch_memory.py,
        Intel Xeon family 6 model 207); the peak then reached 1.13x its value after
        1,000 files when a harder pool came. Chunks cap it early, at a small cost."""
        exact = self.exact()
        if len(rows) <= RECHECK_CHUNK:
            return exact.run(rows, activations)
        return Outputs.joined(
            [
                exact.run(rows[i : i + RECHECK_CHUNK], activations)
                for i in range(0, len(rows), RECHECK_CHUNK)
            ]
        )
