"""The batch table holds no rows of a recorded run (issue 28): it reads those it shows
from the results database, so a million-file run does not cost 1.4 KB per file."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

from PySide6.QtCore import Qt

from tests.batch_helpers import expected_order, make_folder
from xraydesk.batch.database import ResultStore
from xraydesk.batch.stored_rows import StoredRows
from xraydesk.gui.batch_results import NO_CLASS

WAIT_MS = 120_000


def test_a_run_and_a_past_run_are_read_from_the_database(qtbot, panel, tmp_path: Path):
    folder = make_folder(tmp_path / "study")
    with qtbot.waitSignal(panel.run_finished, timeout=WAIT_MS) as blocker:
        assert panel.start(folder, batch_size=3)
    summary = blocker.args[0]
    model = panel.results_model
    assert isinstance(model.rows, StoredRows) and model.stored
    assert model.rowCount() == summary.done == 8
    assert [r.path for r in model.rows] == expected_order(folder)
    with ResultStore() as store:
        stored = list(store.iter_rows(summary.run_id))
    shown = [model.data(model.index(k, 1), Qt.ItemDataRole.DisplayRole) for k in range(8)]
    assert shown[0] == "Error" and all(shown[1:])
    live_counts = dict(model.counts)
    assert sum(live_counts.values()) == 8 and live_counts[None] == 1  # the broken PNG

    # sorting keeps one value per row of the sorted column, not the rows
    panel.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    names = [panel.proxy.row_at(k).path.name for k in range(panel.proxy.rowCount())]
    assert names == sorted(r.path.name for r in stored)

    assert panel.open_run(summary.run_id)
    assert isinstance(model.rows, StoredRows) and model.rowCount() == 8
    assert dict(model.counts) == live_counts
    outcomes = {None, NO_CLASS, "normal", "pneumonia", "covid19"}
    assert set(model.counts) <= outcomes
