"""Issue 27 item 1 in the batch panel: rows classified yet given no class
(indeterminate) have their own filter entry, are counted on it and in the finished
line, and read "Indeterminate" (dimmed numbers), never a bare top class."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from xraydesk.batch.rows import ResultRow
from xraydesk.gui.batch_results import INDETERMINATE_TEXT, NO_CLASS, WITHHELD_COLOUR
from xraydesk.trust.codes import INDETERMINATE, ResultWarning

CLASSES = [("normal", "Normal"), ("pneumonia", "Pneumonia"), ("covid19", "COVID-19")]


def _row(name: str, prediction: str | None = None, error: str | None = None) -> ResultRow:
    probs = None if error else {"normal": 0.2, "pneumonia": 0.3, "covid19": 0.5}
    warnings = []
    if prediction is None and error is None:
        warnings = [ResultWarning(INDETERMINATE, "The top class has 50.0%, below 60%.")]
    return ResultRow(
        Path(f"/films/{name}.png"),
        "m 1.0",
        prediction=prediction,
        probabilities=probs,
        error=error,
        warnings=warnings,
        indeterminate=prediction is None and error is None,
    )


ROWS = [
    _row("a", "normal"),
    _row("b", "covid19"),
    _row("c"),
    _row("d", "normal"),
    _row("e"),
    _row("f", error="cannot read the file"),
]


def _filled(panel) -> None:
    panel._on_started(CLASSES)  # what a run (or a reopened one) does before its rows
    panel._on_rows(ROWS[:3])
    panel._on_rows(ROWS[3:])


def test_indeterminate_has_its_own_filter_entry_and_counts(panel):
    _filled(panel)
    combo = panel.class_filter
    entries = {combo.itemData(k): combo.itemText(k) for k in range(combo.count())}
    assert entries == {
        None: "All predictions (6)",
        "normal": "Normal (2)",
        "pneumonia": "Pneumonia (0)",
        "covid19": "COVID-19 (1)",
        NO_CLASS: "Indeterminate (2)",
    }
    panel.set_filters(class_id=NO_CLASS)
    shown = panel.shown_rows()
    assert [r.path.name for r in shown] == ["c.png", "e.png"]
    assert panel.count_label.text() == "Showing 2 of 6"
    panel.set_filters(class_id="covid19")  # the withheld top class is not its class
    assert [r.path.name for r in panel.shown_rows()] == ["b.png"]
    panel.set_filters(min_probability=0.4)  # no class, no probability to pass
    assert {r.path.name for r in panel.shown_rows()} == {"b.png"}


def test_indeterminate_rows_read_as_such(panel):
    _filled(panel)
    panel.set_filters(class_id=NO_CLASS)
    model = panel.proxy
    assert model.index(0, 1).data() == INDETERMINATE_TEXT
    assert model.index(0, 2).data() == ""  # no "probability of the prediction"
    covid = 3 + 2  # the per-class columns keep the numbers, dimmed
    assert model.index(0, covid).data() == "50.0%"
    assert model.index(0, covid).data(Qt.ItemDataRole.ForegroundRole) == WITHHELD_COLOUR
    panel.table.selectRow(0)
    details = panel.row_details.text()
    assert "Indeterminate: no class given" in details and "below 60%" in details
    assert "COVID-19" not in details


def test_the_finished_line_counts_indeterminate_rows(panel):
    from xraydesk.gui.batch_results import outcome_summary

    _filled(panel)
    assert outcome_summary(panel.results_model.counts) == "2 indeterminate (no class given)"
    panel.results_model.reset(CLASSES)
    assert outcome_summary(panel.results_model.counts) == ""


def test_an_indeterminate_row_with_a_finding_says_what_it_finds(panel):
    """A row the rule withholds while its card's class group passes (``finding``): the
    Prediction column names the finding as the CLI table does, the filter still files it
    under Indeterminate (no class was named)."""
    row = _row("g")
    row.finding = "pneumonia"
    panel._on_started(CLASSES)
    panel._on_rows([row, _row("h")])
    panel.set_filters(class_id=NO_CLASS)
    texts = [panel.proxy.index(k, 1).data() for k in range(2)]
    assert texts == ["Indeterminate (finds pneumonia)", INDETERMINATE_TEXT]
    # read in full, not cut to "Indeterminate …" (a real-X screenshot showed it cut)
    width = panel.table.fontMetrics().horizontalAdvance(texts[0])
    assert panel.table.horizontalHeader().sectionSize(1) > width
    assert row.to_json_dict()["finding"] == "pneumonia"


def test_a_past_run_reopened_shows_its_findings_in_full(panel):
    """Reopening a recorded run reads its rows (and their findings) from the database; the
    Prediction column is widened as for a live run."""
    from xraydesk.batch.database import ResultStore, model_key
    from xraydesk.model.card import ModelCard

    card = ModelCard.read(panel.model_path) if panel.model_path else None
    assert card is not None
    found = _row("g")
    found.finding = "pneumonia"
    with ResultStore() as store:
        run_id = store.start_run(["/films"], False, card)
        store.add_rows(run_id, model_key(card), 0, [found, _row("h", "normal")])
        store.commit()
    panel.table.horizontalHeader().resizeSection(1, 60)
    assert panel.open_run(run_id)
    texts = [panel.results_model.index(k, 1).data() for k in range(2)]
    assert texts[0] == "Indeterminate (finds pneumonia)"
    width = panel.table.fontMetrics().horizontalAdvance(texts[0])
    assert panel.table.horizontalHeader().sectionSize(1) > width
