"""Issue 29 #4: the batch table reads plainly: warning labels, names elided in the middle,
folders at the start, a count under filters, exports that say what they write, no
"0 / 100" before a run, rows that keep up with the progress."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv
import itertools
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from tests.batch_helpers import make_folder
from xraydesk.batch.rows import ResultRow
from xraydesk.gui.batch_export import export_dialog_title
from xraydesk.gui.batch_panel import BatchPanel
from xraydesk.gui.batch_results import count_text
from xraydesk.trust.codes import (
    NOT_CHEST,
    OUT_OF_DISTRIBUTION,
    WARNING_CODES,
    WARNING_LABELS,
    ResultWarning,
)

WAIT_MS = 120_000
CLASSES = [("normal", "Normal"), ("pneumonia", "Pneumonia")]


def _rows(folder: Path, count: int) -> list[ResultRow]:
    prefix = "1-s2.0-S0140673620303706-gr1_lrg-"
    return [
        ResultRow(
            folder / f"{prefix}{k:03d}.png",
            "m 1",
            "normal",
            {"normal": 0.9, "pneumonia": 0.1},
            warnings=[ResultWarning(OUT_OF_DISTRIBUTION, "unlike the training images")]
            if k % 2
            else [],
        )
        for k in range(count)
    ]


def _cell(panel: BatchPanel, row: int, column: int, role=Qt.ItemDataRole.DisplayRole):
    return panel.proxy.index(row, column).data(role)


def test_every_warning_code_has_a_human_label():
    assert set(WARNING_LABELS) == set(WARNING_CODES)
    assert all("_" not in label for label in WARNING_LABELS.values())


def test_warnings_read_as_labels_with_the_code_in_the_tooltip(panel, tmp_path):
    panel.results_model.reset(CLASSES)
    row = _rows(tmp_path, 2)[1]
    row.warnings.append(ResultWarning(NOT_CHEST, "not a chest radiograph"))
    panel.results_model.append_rows([row])
    warnings_column = panel.results_model.columnCount() - 2
    shown = _cell(panel, 0, warnings_column)
    assert shown == "Unlike training images, Not a chest X-ray"
    assert "out_of_distribution" not in shown and "not_chest" not in shown
    tip = _cell(panel, 0, warnings_column, Qt.ItemDataRole.ToolTipRole)
    assert "(out_of_distribution)" in tip and "(not_chest)" in tip
    panel.table.selectRow(0)
    details = panel.row_details.text()
    assert "⚠ Not a chest X-ray: not a chest radiograph" in details


def test_names_elide_in_the_middle_and_folders_at_the_start(panel, tmp_path):
    deep = tmp_path / "a-very-long-folder-name-that-does-not-fit" / "ward-7"
    panel.results_model.reset(CLASSES)
    panel._resize_columns()
    panel.results_model.append_rows(_rows(deep, 3))
    table = panel.table
    modes = {}
    for column in (0, panel.results_model.folder_column, 1):
        option = QStyleOptionViewItem()
        table.itemDelegateForColumn(column) or table.itemDelegate()
        delegate = table.itemDelegateForColumn(column) or table.itemDelegate()
        delegate.initStyleOption(option, panel.proxy.index(0, column))
        modes[column] = option.textElideMode
    assert modes[0] == Qt.TextElideMode.ElideMiddle
    assert modes[panel.results_model.folder_column] == Qt.TextElideMode.ElideLeft
    assert str(deep / "1-s2.0-S0140673620303706-gr1_lrg-000.png") in _cell(
        panel, 0, 0, Qt.ItemDataRole.ToolTipRole
    )


def test_filtered_view_shows_a_count_and_export_can_write_all(panel, tmp_path):
    panel.results_model.reset(CLASSES)
    panel._fill_class_filter(CLASSES)
    panel.results_model.append_rows(_rows(tmp_path, 10))
    assert panel.count_label.text() == "10 rows"
    panel.flagged_check.setChecked(True)
    assert panel.count_label.text() == "Showing 5 of 10"
    assert export_dialog_title("csv", 5, 10) == "Export CSV: 5 of 10 rows (filtered)"
    out = tmp_path / "all.csv"
    assert panel.export(out, "csv", "all") == 10
    with open(out, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 10
    assert panel.export(tmp_path / "shown.csv", "csv") == 5
    assert count_text(0, 0) == "" and count_text(1, 1) == "1 row"


def test_progress_bar_reads_ready_before_a_run(panel):
    assert panel.progress_bar.text() == "Ready"
    assert "/" not in panel.progress_bar.text()


def test_rows_keep_up_with_the_progress(qtbot, panel, tmp_path):
    """When the engine reports a group done, that group's rows are in the table before
    the next report (they used to wait for the next group: 1 row shown at 32 done)."""
    folder = make_folder(tmp_path / "study", count=12)
    seen: list[tuple[int, int]] = []  # (reported done, rows in the table)
    panel.progress_changed.connect(lambda p: seen.append((p.done, panel.results_model.rowCount())))
    with qtbot.waitSignal(panel.run_finished, timeout=WAIT_MS):
        assert panel.start(folder, batch_size=3)
    assert panel.progress_bar.text() != "Ready"
    reports = [done for done, _ in seen]
    assert len(set(reports)) >= 3
    for (before, _), (_, rows_then) in itertools.pairwise(seen):
        assert rows_then >= before, seen
