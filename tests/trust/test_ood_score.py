"""The out-of-distribution score computed with two products per batch (projections on the
components and on the class means) gives the values of the direct per-class formula, on
the bundled cards' statistics, for a single image and for batches large enough to be cut
under OpenBLAS's threading threshold; and ``matmul_on_this_thread`` is ``a @ b``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.paths import MODELS_DIR
from xraydesk.blas import matmul_on_this_thread
from xraydesk.model.card import ModelCard
from xraydesk.trust.ood import OODStatistics


def _direct(stats: OODStatistics, x: np.ndarray) -> np.ndarray:
    """The score as first written: the difference to each class mean, projected."""
    x = np.asarray(x, dtype=np.float64)
    inv = 1.0 / stats.eigenvalues.astype(np.float64)
    comps = stats.components.astype(np.float64)
    best = np.full(len(x), np.inf)
    for mean in stats.means.astype(np.float64):
        diff = x - mean
        z = diff @ comps
        outside = (np.einsum("nd,nd->n", diff, diff) - np.einsum("nk,nk->n", z, z)).clip(0)
        best = np.minimum(best, (z * z) @ inv + outside / stats.residual)
    return best / x.shape[1]


@pytest.mark.parametrize("model", ["chest-3class", "pediatric-pneumonia"])
@pytest.mark.parametrize("count", [1, 5, 64])
def test_score_equals_the_direct_formula(model: str, count: int) -> None:
    stats = OODStatistics.from_card(ModelCard.read(MODELS_DIR / f"{model}.json"))
    assert stats is not None
    rng = np.random.default_rng(count)
    dim = stats.means.shape[1]
    near = stats.means[rng.integers(0, len(stats.means), count)] + rng.normal(0, 0.3, (count, dim))
    far = rng.normal(0, 30.0, (count, dim))  # large norms: the subtraction must stay exact
    for features in (near.astype(np.float32), far.astype(np.float32)):
        np.testing.assert_allclose(stats.score(features), _direct(stats, features), rtol=1e-9)
    assert stats.score(near[0].astype(np.float32)).shape == (1,)


@pytest.mark.parametrize("shape", [(3, 7, 5), (64, 2048, 32), (33, 2048, 3), (1, 4096, 128)])
def test_matmul_on_this_thread_is_the_product(shape: tuple[int, int, int]) -> None:
    m, k, n = shape
    rng = np.random.default_rng(m)
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n)).astype(np.float32)
    out = matmul_on_this_thread(a, b)
    assert out.dtype == np.result_type(a, b) and out.shape == (m, n)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
