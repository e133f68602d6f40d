"""The batch panel: classify a whole folder from the desktop app.

A front door over ``xraydesk.batch`` (the same pipeline and results database as
``xraydesk classify``). The run goes on in its own QThread; rows reach the table in
chunks, so the window stays responsive at hundreds of images per second. Cancel sets the
engine's event: the run stops within a second and keeps every finished row.

The main window hands over its active model with ``set_model(card_path, device)`` (or
any ``set_classifier_provider``) and connects ``open_image_requested`` to its viewer.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QModelIndex, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QWidget,
)

from xraydesk.batch.database import ResultStore
from xraydesk.batch.progress import BatchProgress
from xraydesk.batch.rows import ResultRow, export_rows
from xraydesk.batch.run import BatchOptions, RunSummary
from xraydesk.batch.run_state import RunStatus
from xraydesk.batch.stored_rows import StoredRows
from xraydesk.durations import format_duration
from xraydesk.errors import NoModelError, XRayDeskError
from xraydesk.files import folder_problem
from xraydesk.gui.batch_export import ask_export_rows, export_dialog_title
from xraydesk.gui.batch_history import PastRuns
from xraydesk.gui.batch_layout import build_panel, fit_prediction_column, row_status
from xraydesk.gui.batch_results import (
    INDETERMINATE_TEXT,
    NO_CLASS,
    count_text,
    filter_entry_text,
    outcome_summary,
)
from xraydesk.gui.batch_skipped import SkippedFilesDialog
from xraydesk.gui.jobs import BatchJob, ClassifierProvider, JobThread
from xraydesk.gui.save_target import check_save_target
from xraydesk.model.card import ModelCard
from xraydesk.printable import printable
from xraydesk.trust.codes import warning_label

log = logging.getLogger(__name__)


# ============================================================================ the panel
class BatchPanel(PastRuns, QWidget):
    open_image_requested = Signal(Path)
    run_started = Signal()
    progress_changed = Signal(object)  # BatchProgress
    run_finished = Signal(object)  # RunSummary, or None when the run could not start
    message_shown = Signal(str)

    def __init__(
        self,
        provider: ClassifierProvider | None = None,
        model_label: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("batch-panel")
        self._provider = provider
        self._model_label = model_label
        self.model_path: Path | None = None  # what ``set_model`` was last given
        self.model_device = "auto"
        self._runner: JobThread | None = None
        self._cam_dir: Path | None = None
        self._shown_run: int | None = None
        self._skipped: list[tuple[Path, str]] = []
        self._skipped_count = 0
        self._build()
        self._connect()
        self._sync()
        self.refresh_runs()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- layout ----------------------------------------------------------------------------
    def _build(self) -> None:
        build_panel(self)

    def _connect(self) -> None:
        self.browse_button.clicked.connect(self.choose_folder)
        self.skipped_button.clicked.connect(self.show_skipped)
        self.table.selectionModel().currentRowChanged.connect(self._show_row_details)
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button.clicked.connect(self.cancel)
        self.folder_edit.textChanged.connect(self._sync)
        self.cam_check.toggled.connect(self._cam_toggled)
        self.class_filter.currentIndexChanged.connect(self._apply_filters)
        self.threshold_spin.valueChanged.connect(self._apply_filters)
        self.errors_check.toggled.connect(self._apply_filters)
        self.flagged_check.toggled.connect(self._apply_filters)
        self.table.doubleClicked.connect(self._open_row)
        self.export_csv_button.clicked.connect(lambda: self._ask_export("csv"))
        self.export_json_button.clicked.connect(lambda: self._ask_export("json"))
        self.open_run_button.clicked.connect(self._open_selected_run)
        self.runs_list.itemDoubleClicked.connect(lambda _item: self._open_selected_run())
        self.runs_list.currentRowChanged.connect(lambda _row: self._sync())

    # -- model -----------------------------------------------------------------------------
    def set_classifier_provider(self, provider: ClassifierProvider | None, label: str = "") -> None:
        """Classify with what ``provider()`` returns (called in the worker thread)."""
        self._provider = provider
        self._model_label = label
        self._sync()

    def set_model(self, card_path: str | Path | None, device: str = "auto") -> None:
        """Use this model card (the main window's active model), loaded through the app's
        classifier cache so the viewer and the batch share one copy."""
        self.model_path = None if card_path is None else Path(card_path)
        self.model_device = device
        if card_path is None:
            self.set_classifier_provider(None)
            return
        from xraydesk.classifier.cache import shared_cache

        try:
            label = ModelCard.read(card_path).label
        except XRayDeskError as exc:
            self.show_message(str(exc))
            self.set_classifier_provider(None)
            return
        path = Path(card_path)
        self.set_classifier_provider(lambda: shared_cache().get(path, device), label)

    # -- running ---------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder to classify", self.folder_edit.text()
        )
        if folder:
            self.folder_edit.setText(folder)

    def _cam_toggled(self, on: bool) -> None:
        if not on:
            self._cam_dir = None
            return
        if self._cam_dir is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder for the Grad-CAM images")
            if not folder:
                self.cam_check.setChecked(False)
                return
            self._cam_dir = Path(folder)
        self.cam_check.setToolTip(f"Grad-CAM overlays go to {self._cam_dir}")

    def is_running(self) -> bool:
        return self._runner is not None and self._runner.isRunning()

    def start(self, folder: str | Path | None = None, batch_size: int = 32) -> bool:
        """Classify ``folder`` (default: the one in the folder field); False if it cannot start."""
        if self.is_running():
            return False
        if folder is not None:
            self.folder_edit.setText(str(folder))
        text = self.folder_edit.text().strip()
        if not text:
            self.show_message("Choose a folder to classify.")
            return False
        path = Path(text).expanduser()
        if (problem := folder_problem(path)) is not None:
            self.show_message(f"{printable(path)}: {problem}.")
            return False
        provider = self._provider
        if provider is None:
            self.show_message(str(NoModelError("No model is active: choose one in the viewer.")))
            return False
        options = BatchOptions(
            recursive=self.recursive_check.isChecked(),
            skip_known=not self.no_skip_check.isChecked(),
            batch_size=batch_size,
            cam_dir=self._cam_dir if self.cam_check.isChecked() else None,
        )
        self.clear_message()
        self.results_model.reset([])
        self._shown_run = None
        self._skipped, self._skipped_count = [], 0
        self._show_skipped_count(0)
        self.progress_bar.setRange(0, 0)  # busy until the total is known
        self.progress_bar.setFormat("%v / %m")
        self.progress_label.setText("Loading the model…")
        job = BatchJob(path, provider, options)
        job.started_run.connect(self._on_started)
        job.rows_ready.connect(self._on_rows)
        job.progress.connect(self._on_progress)
        job.failed.connect(self.show_message)
        job.done.connect(self._on_done)
        self._runner = JobThread(job, self)
        self._runner.start()
        self._sync()
        self.run_started.emit()
        return True

    @Slot()
    def cancel(self) -> None:
        if self._runner is not None:
            self._runner.job.cancel()
            self.progress_label.setText("Stopping…")

    @Slot()
    def shutdown(self, wait_ms: int = 30_000) -> None:
        """Cancel a run and wait for its thread (before the panel or the app goes away)."""
        runner = self._runner
        if runner is not None:
            runner.stop(wait_ms)
            QCoreApplication.sendPostedEvents(self)  # deliver the last rows and 'done'

    @Slot(object)
    def _on_started(self, classes: list[tuple[str, str]]) -> None:
        self.results_model.reset(classes)
        self._fill_class_filter(classes)
        self._resize_columns()

    @Slot(object)
    def _on_rows(self, rows: list[ResultRow]) -> None:
        self.results_model.append_rows(rows)
        fit_prediction_column(self.table, rows)
        self._read_rows_from_store()

    def _read_rows_from_store(self) -> None:
        """Once the run is recorded, let the table read its rows from the database
        rather than hold them (issue 28): the rows sent so far are committed there."""
        runner = self._runner
        run_id = getattr(runner.job, "run_id", None) if runner is not None else None
        if run_id is None or self.results_model.stored:
            return
        assert runner is not None and isinstance(runner.job, BatchJob)
        try:
            store = ResultStore(runner.job.options.db_path)
            rows = StoredRows(store, run_id, count=self.results_model.rowCount())
        except XRayDeskError:  # the table keeps holding its rows: slower to grow, no worse
            log.warning("the batch table keeps its rows in memory", exc_info=True)
            return
        self.results_model.show_stored(rows)

    @Slot(object)
    def _on_progress(self, progress: BatchProgress) -> None:
        total = progress.total
        if total is None:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(min(progress.done, total))
        of = f"{progress.done} of {total}" if total is not None else f"{progress.done} of ?"
        parts = [of, f"{progress.rate:.1f} images/s", f"{format_duration(progress.eta)} left"]
        if progress.failed:
            parts.append(f"{progress.failed} failed")
        if progress.reused:
            parts.append(f"{progress.reused} reused")
        self.progress_label.setText(" · ".join(parts))
        self.progress_changed.emit(progress)

    @Slot()
    def _on_done(self) -> None:
        runner, self._runner = self._runner, None
        summary: RunSummary | None = None
        if runner is not None:
            runner.wait()
            runner.deleteLater()
            assert isinstance(runner.job, BatchJob)
            summary = runner.job.summary
            self._skipped = runner.job.skipped
        self._skipped_count = (summary.not_images + summary.hidden) if summary else 0
        self._show_skipped_count(self._skipped_count)
        if summary is not None:
            self._shown_run = summary.run_id
            self.progress_bar.setRange(0, max(1, summary.total or summary.done))
            self.progress_bar.setValue(summary.done)
            line = " · ".join(
                p for p in (_summary_text(summary), outcome_summary(self.results_model.counts)) if p
            )
            self.progress_label.setText(line)
            if summary.message and summary.status != RunStatus.COMPLETED:
                self.show_message(summary.message)
        else:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("Ready")
            self.progress_label.setText("Not started.")
        self.refresh_runs()
        self._sync()
        self.run_finished.emit(summary)

    # -- results ---------------------------------------------------------------------------
    def _fill_class_filter(self, classes: list[tuple[str, str]]) -> None:
        current = self.class_filter.currentData()
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("All predictions", None)
        for cid, name in classes:
            self.class_filter.addItem(name, cid)
        self.class_filter.addItem(INDETERMINATE_TEXT, NO_CLASS)  # classified, no class given
        index = self.class_filter.findData(current)
        self.class_filter.setCurrentIndex(max(0, index))
        self.class_filter.blockSignals(False)
        self._apply_filters()

    def set_filters(
        self, class_id: str | None = None, min_probability: float = 0.0, errors_only: bool = False
    ) -> None:
        """Set the filter controls (``min_probability`` in [0, 1])."""
        for widget in (self.class_filter, self.threshold_spin, self.errors_check):
            widget.blockSignals(True)
        self.class_filter.setCurrentIndex(max(0, self.class_filter.findData(class_id)))
        self.threshold_spin.setValue(round(min_probability * 100))
        self.errors_check.setChecked(errors_only)
        for widget in (self.class_filter, self.threshold_spin, self.errors_check):
            widget.blockSignals(False)
        self._apply_filters()

    def _apply_filters(self) -> None:
        errors_only = self.errors_check.isChecked()
        self.class_filter.setEnabled(not errors_only)
        self.threshold_spin.setEnabled(not errors_only)
        self.proxy.set_filters(
            self.class_filter.currentData(),
            self.threshold_spin.value() / 100.0,
            errors_only,
            flagged_only=self.flagged_check.isChecked(),
        )
        self._update_count()

    def _update_count(self, *_args: object) -> None:
        """'Showing 12 of 340' under the filters, so a filtered view never passes for all."""
        self.count_label.setText(count_text(self.proxy.rowCount(), self.results_model.rowCount()))
        counts, names = self.results_model.counts, self.results_model.display_names
        names = {**names, NO_CLASS: INDETERMINATE_TEXT, None: "All predictions"}
        for k in range(self.class_filter.count()):  # each entry with its rows: "Normal (12)"
            key = self.class_filter.itemData(k)
            n = self.results_model.rowCount() if key is None else counts.get(key, 0)
            self.class_filter.setItemText(k, filter_entry_text(names.get(key, key), n))

    def _resize_columns(self) -> None:
        """Names in full in every header (no "terial pneum"), numbers narrow, so Status
        comes into sight as early as the width allows."""
        header = self.table.horizontalHeader()
        for column in range(1, self.results_model.columnCount()):
            self.table.setItemDelegateForColumn(column, None)  # type: ignore[arg-type]
        self.table.setItemDelegateForColumn(self.results_model.folder_column, self._folder_delegate)
        header.resizeSection(0, 180)
        for column in range(1, self.results_model.columnCount() - 1):
            header.resizeSection(column, max(72, header.sectionSizeHint(column) + 8))
        warnings = self.results_model.folder_column - 1  # one label in full, more in the tip
        header.resizeSection(warnings, max(header.sectionSize(warnings), 170))

    def _show_row_details(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.row_details.setText("Select a row to see its file and status in full.")
            return
        row = self.proxy.row_at(current.row())
        status = row_status(row, self.results_model.display_names)
        flags = [f"⚠ {warning_label(w.code)}: {w.message}" for w in row.warnings]
        self.row_details.setText("\n".join([str(row.path), status, *flags]))

    # -- skipped files -----------------------------------------------------------------------
    @property
    def skipped_files(self) -> list[tuple[Path, str]]:
        """The files the last run passed over, with the reason (at most 1000 named)."""
        return list(self._skipped)

    def _show_skipped_count(self, count: int) -> None:
        self.skipped_button.setText(f"Skipped ({count})…")
        self.skipped_button.setVisible(count > 0)

    def show_skipped(self) -> QDialog:
        """A window listing the skipped files and why (non-modal)."""
        dialog = SkippedFilesDialog(self._skipped, self._skipped_count, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _open_row(self, index: QModelIndex) -> None:
        if index.isValid():
            self.open_image_requested.emit(self.proxy.row_at(index.row()).path)

    def shown_rows(self) -> list[ResultRow]:
        return self.proxy.shown_rows()

    def _ask_export(self, fmt: str) -> None:
        """Ask all or filtered when a filter hides rows, then where; the title says which."""
        shown, total = self.proxy.rowCount(), self.results_model.rowCount()
        which = ask_export_rows(self, shown, total)
        if which is None:
            return
        suffix = {"csv": "CSV files (*.csv)", "json": "JSON files (*.json)"}[fmt]
        title = export_dialog_title(fmt, shown if which == "shown" else total, total)
        path, _ = QFileDialog.getSaveFileName(self, title, "", suffix)
        if path:
            self.export(path, fmt, which)

    def export(self, path: str | Path, fmt: str, which: str = "shown") -> int | None:
        """Write the rows shown (``which="shown"``: filters and sort applied) or every row
        (``"all"``) as CSV or JSON (an array); the count, or None on failure."""
        rows = self.shown_rows() if which == "shown" else self.results_model.rows
        try:  # never over an image (the export replaced a film of the run by a table)
            keep, what = (r.path for r in rows), f"the {fmt.upper()} file"
            check_save_target(Path(path), what, keep, "an image of this run", document=True)
            count = export_rows(rows, self.results_model.class_ids, path, fmt)
        except XRayDeskError as exc:
            self.show_message(printable(exc))
            return None
        self.progress_label.setText(f"Exported {count} rows to {printable(path)}")
        return count

    # -- messages and state ----------------------------------------------------------------
    @Slot(str)
    def show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.show()
        self.message_shown.emit(text)

    def clear_message(self) -> None:
        self.message_label.clear()
        self.message_label.hide()

    def _sync(self) -> None:
        running = self.is_running()
        has_model = self._provider is not None
        self.model_label.setText(
            f"Model: {self._model_label}"
            if has_model and self._model_label
            else "Model: the active model"
            if has_model
            else "No model is active."
        )
        self.start_button.setEnabled(not running and has_model and bool(self.folder_edit.text()))
        self.cancel_button.setEnabled(running)
        for widget in (
            self.folder_edit,
            self.browse_button,
            self.recursive_check,
            self.no_skip_check,
            self.cam_check,
            self.open_run_button,
            self.runs_list,
        ):
            widget.setEnabled(not running)
        self.open_run_button.setEnabled(not running and self.runs_list.currentItem() is not None)


def _summary_text(summary: RunSummary) -> str:
    words = {
        RunStatus.COMPLETED: "Done",
        RunStatus.CANCELLED: "Cancelled",
        RunStatus.FAILED: "Stopped",
    }
    status = words.get(summary.status, summary.status)
    parts = [f"{status}: {summary.done - summary.failed} of {summary.done} classified"]
    if summary.reused:
        parts.append(f"{summary.reused} reused")
    if summary.failed:
        parts.append(f"{summary.failed} failed")
    skipped = summary.not_images + summary.hidden
    if skipped:
        parts.append(f"{skipped} other files skipped")
    classified = summary.classified  # this run's: no failed file, no row reused
    if classified and summary.seconds > 0:
        parts.append(f"{classified / summary.seconds:.1f} images/s")
    return " · ".join(parts)
