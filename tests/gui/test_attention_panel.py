"""Issue 27 item 3 in the viewer: an answer whose heat map lies outside the lungs reads as
indeterminate in the results panel, with the attention check's reason as the headline,
the probabilities one click away and the heat map held back with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gui.conftest import open_and_wait
from tests.gui.heatmap_models import make_leaning_model
from xraydesk.gui.results_answer import INDETERMINATE_TITLE
from xraydesk.trust import attention
from xraydesk.trust.codes import EVIDENCE_OUTSIDE_LUNGS


@pytest.fixture(scope="module")
def covid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_leaning_model(tmp_path_factory.mktemp("covid"), "covid19", "covid-lean")


@pytest.mark.data
def test_evidence_outside_the_lungs_is_indeterminate_in_the_panel(
    qtbot, make_window, covid_model, png_path, monkeypatch
):
    # a threshold no map reaches: this film's answer is withheld by the attention check
    monkeypatch.setattr(attention, "MIN_LUNG_SHARE", 1.01)
    window = make_window(model=covid_model)
    open_and_wait(qtbot, window, png_path)
    checked = window.analysis.checked
    assert checked is not None and checked.verdict.is_indeterminate
    assert EVIDENCE_OUTSIDE_LUNGS in checked.codes
    panel = window.results
    headline = panel.verdict_label.text()
    assert panel.verdict_label.isVisible() and INDETERMINATE_TITLE in headline
    assert "lung fields" in headline and "COVID" not in headline
    assert panel.probabilities_hidden and "lung fields" in (panel.indeterminate_reason or "")
    assert "lung fields" not in panel.warnings_label.text()  # said once, as the headline
    assert not window.view.has_heat_layer and window.view.heat_caption == ""
