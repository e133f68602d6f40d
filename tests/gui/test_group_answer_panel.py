"""The results panel (and its report) of a film the paediatric model withholds while
naming the finding: the indeterminate headline with the finding in its reason, no class
highlighted, the probabilities one click away and the heat map held back
(``trust.group_answer``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gui.conftest import open_and_wait
from tests.paths import MODELS_DIR
from tests.trust.grouped_film import FINDS, PEDIATRIC, pediatric_grouped_film
from xraydesk.gui.results_answer import INDETERMINATE_TITLE


@pytest.fixture(scope="module")
def grouped_film(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pediatric_grouped_film(shared_data, tmp_path_factory.mktemp("grouped"))


@pytest.mark.data
def test_the_headline_names_the_finding_and_the_class_stays_withheld(
    qtbot, make_window, grouped_film
):
    window = make_window(model=MODELS_DIR / f"{PEDIATRIC}.json")
    open_and_wait(qtbot, window, grouped_film)
    checked = window.analysis.checked
    assert checked is not None and checked.verdict.is_indeterminate
    panel = window.results
    headline = panel.verdict_label.text()
    assert panel.verdict_label.isVisible() and INDETERMINATE_TITLE in headline
    assert FINDS in headline
    assert panel.probabilities_hidden and panel.names_no_class
    assert not window.view.has_heat_layer and window.view.heat_caption == ""
    content = window.report_content()  # the PDF: withheld, with the same reason
    assert content is not None and content.facts is not None
    answer = content.facts.answer
    assert answer.withheld and FINDS in answer.reason and content.heat_map is None
    panel.set_probabilities_expanded(True)  # one click: the numbers, no class highlighted
    assert not panel.probabilities_hidden and not window.view.has_heat_layer
