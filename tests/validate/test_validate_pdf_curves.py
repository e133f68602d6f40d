"""The report's curves page when no class has an ROC curve (every image withheld or of
one class): a note on the page, and no matplotlib "No artists with labels" warning on the
user's terminal. Found by a hostile-input sweep of ``xraydesk validate``."""

from __future__ import annotations

import warnings
from pathlib import Path

from matplotlib.figure import Figure  # a Figure of its own: no pyplot, no GUI backend

from xraydesk.validate.pdf import _curves_page


def _report(roc: dict[str, list[list[float]]]) -> dict:
    per_class = {cid: {"auc": 0.9, "auc_ci95": [0.8, 0.95]} for cid in roc}
    bins = [{"low": 0.9, "high": 1.0, "n": 2, "accuracy": 0.5, "confidence": 0.95}]
    metrics = {"roc": roc, "per_class": per_class, "reliability": bins, "ece": 0.4}
    return {
        "figures": {"metrics": metrics},
        "model": {"display_names": {"normal": "Normal", "covid19": "COVID-19"}},
    }


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_no_curve_gives_a_note_and_no_warning() -> None:
    fig = Figure()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the legend warning would fail the test
        assert _curves_page(fig, _report({"normal": [], "covid19": []}), {})
    assert any("no ROC curve" in text for text in _texts(fig))


def test_curves_keep_their_legend(tmp_path: Path) -> None:
    fig = Figure()
    points = [[0.0, 0.0], [0.2, 0.7], [1.0, 1.0]]
    assert _curves_page(fig, _report({"normal": points, "covid19": []}), {})
    legend = fig.axes[0].get_legend()
    assert legend is not None and "AUC" in legend.get_texts()[0].get_text()
    assert not any("no ROC curve" in text for text in _texts(fig))
