"""The batch panel's past runs: the list from the results database and reopening one.

A mixin of ``BatchPanel`` (it uses the panel's ``runs_list``, ``results_model``, progress
widgets and messages): a past run's rows come back from the database, not from a rerun.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidgetItem

from xraydesk.batch.database import ResultStore, RunInfo, default_db_path
from xraydesk.batch.stored_rows import StoredRows
from xraydesk.errors import XRayDeskError
from xraydesk.gui.batch_layout import fit_prediction_column

PAST_RUNS_SHOWN = 100


class PastRuns:
    """Tools > Batch's list of past runs."""

    _shown_run: int | None

    def refresh_runs(self) -> None:
        runs: list[RunInfo] = []
        if default_db_path().exists():  # looking does not create the database
            try:
                with ResultStore() as store:
                    runs = store.runs(limit=PAST_RUNS_SHOWN)
            except XRayDeskError as exc:
                self.show_message(str(exc))
        self.runs_list.clear()
        for info in runs:
            item = QListWidgetItem(_run_text(info))
            item.setData(Qt.ItemDataRole.UserRole, info.id)
            item.setToolTip(info.message or info.folder)
            self.runs_list.addItem(item)
        self._sync()

    def _open_selected_run(self) -> None:
        item = self.runs_list.currentItem()
        if item is not None:
            self.open_run(int(item.data(Qt.ItemDataRole.UserRole)))

    def open_run(self, run_id: int) -> bool:
        """Show a past run's rows in the table, read from the database as they are shown
        (``StoredRows``: a run of any size costs the table a few MB)."""
        if self.is_running():
            return False
        try:
            store = ResultStore()
        except XRayDeskError as exc:
            self.show_message(str(exc))
            return False
        try:
            info = store.run(run_id)
            rows = StoredRows(store, run_id)
        except XRayDeskError as exc:
            store.close()
            self.show_message(str(exc))
            return False
        self.results_model.reset(info.classes)
        self.results_model.show_stored(rows)  # the table closes the store
        self._fill_class_filter(info.classes)
        self._resize_columns()
        first = range(min(200, self.results_model.rowCount()))  # a page: no whole-run read
        fit_prediction_column(self.table, [self.results_model.row_at(k) for k in first])
        self._shown_run = run_id
        self.folder_edit.setText(info.inputs[0] if info.inputs else info.folder)
        done = info.rows_done
        self.progress_bar.setFormat("%v / %m")
        self.progress_bar.setRange(0, max(1, info.total or done))
        self.progress_bar.setValue(done)
        self.progress_label.setText(f"Run {info.id}: {_run_text(info)}")
        self.clear_message()
        self._sync()
        return True

    @property
    def shown_run(self) -> int | None:
        return self._shown_run


def _run_text(info: RunInfo) -> str:
    when = info.started.replace("T", " ")[:16]
    files = f"{info.rows_done} files" + (f", {info.failed} failed" if info.failed else "")
    name = Path(info.folder).name or info.folder
    return f"#{info.id}  {when}  {name}  ·  {info.model}  ·  {info.status}  ·  {files}"
