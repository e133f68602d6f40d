"""Issue 27 #3: the attention share of a non-square film is the same through the viewer's
single-image check (``TrustCheck``) and the batch engine (``decide_all`` from the
decode stage), also for a model that letterboxes: the lung-field prior is placed in the
padded input square the class map lives in, not stretched over it.

Real films: covid-cxnet's first non-square films (350 x 256 and 256 x 269). Each front
door's own call of ``lung_shares`` is recorded, so the shares compared are the ones its
verdict judged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.model_factory import make_test_model
from tests.real_films import pool_films
from xraydesk.batch.run import BatchOptions, BatchRun
from xraydesk.classifier import Classifier
from xraydesk.imaging import load_xray
from xraydesk.trust import TrustCheck, check, verdict
from xraydesk.trust.attention import lung_shares


@pytest.fixture(scope="module")
def wide_films(shared_data: Path) -> list[Path]:
    """Two real films whose sides differ (one landscape, one portrait)."""
    sizes = {path: Image.open(path).size for path in pool_films(shared_data, 20, "covid-cxnet")}
    landscape = next(p for p, (width, height) in sizes.items() if width > height)
    portrait = next(p for p, (width, height) in sizes.items() if width < height)
    return [landscape, portrait]


@pytest.fixture(scope="module")
def letterboxing(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    card = make_test_model(tmp_path_factory.mktemp("letterbox"), size=64, resize="letterbox")
    return Classifier.load(card, device="cpu")


def recorded_shares(monkeypatch, classifier: Classifier, films: list[Path], optimise: bool):
    """(single-image shares, batch shares) of ``films``, as each front door measured them."""
    seen: dict[str, list[float]] = {"single": [], "batch": []}

    def recorder(where: str, original):
        def record(*args, **kwargs):
            out = original(*args, **kwargs)
            seen[where] += [float(v) for v in out]
            return out

        return record

    monkeypatch.setattr(check, "lung_shares", recorder("single", check.lung_shares))
    monkeypatch.setattr(verdict, "lung_shares", recorder("batch", verdict.lung_shares))
    for film in films:
        TrustCheck.of(classifier).classify(load_xray(film))
    options = BatchOptions(
        record=False, skip_known=False, count_total=False, optimise_model=optimise
    )
    rows = list(BatchRun(films, classifier, options).rows())
    assert all(row.error is None for row in rows)
    return seen["single"], seen["batch"]


@pytest.mark.data
@pytest.mark.parametrize("optimise", [False, True], ids=["plain", "folded"])
def test_single_and_batch_give_the_same_share_on_non_square_films(
    monkeypatch, letterboxing, wide_films, optimise
):
    single, batch = recorded_shares(monkeypatch, letterboxing, wide_films, optimise)
    assert len(single) == len(batch) == len(wide_films)
    assert all(np.isfinite(single))
    # the plain copy is the same network: the same share; the folded copy (batch norm
    # folded, weights in the device's precision) differs by its rounding only
    assert np.allclose(single, batch, atol=1e-5 if not optimise else 0.02)


@pytest.mark.data
def test_the_square_prior_would_give_another_share(letterboxing, wide_films):
    """The check above can fail: a prior stretched over the padded square (what the
    batch engine measured before it passed the shapes) misses the landscape film's
    share by far more than the tolerance."""
    xray = load_xray(wide_films[0])
    forward = letterboxing.forward(letterboxing.preprocess(xray)[None], activations=True)
    probs = letterboxing.probabilities(forward.logits)
    placed = lung_shares(letterboxing, forward.activations, probs, [xray.shape])[0]
    stretched = lung_shares(letterboxing, forward.activations, probs)[0]
    assert abs(placed - stretched) > 0.05
