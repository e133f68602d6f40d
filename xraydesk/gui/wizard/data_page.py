"""Wizard page 1: which images, and are they fit to train on?

Checking runs in a worker as soon as the sources change: counts per class (and per
pool when there are several), a few thumbnails per class so a mislabelled folder is
obvious at a glance, and every problem found (unreadable files, duplicates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xraydesk.files import missing_or_kind, non_file_kind, path_problem
from xraydesk.gui.jobs import CheckJob, CheckOutcome, JobThread
from xraydesk.printable import printable
from xraydesk.trainer import DatasetReport, TrainConfig, TrainProgress
from xraydesk.trainer.class_sources import RISK as SHORTCUT_RISK


class DataPage(QWizardPage):
    checked = Signal(object)  # CheckOutcome, after every finished check

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Training data")
        self.setSubTitle(
            "Pick a folder with one subfolder per class (e.g. normal/, pneumonia/), or a CSV "
            "manifest with the columns path,label and optionally patient. Images of one "
            "patient are kept together when the data is split."
        )
        self.outcome: CheckOutcome | None = None
        self._runner: JobThread | None = None
        self._checking = False  # set from start to the job's done signal (not thread state)
        self._pending = False

        self.sources = QListWidget()
        self.sources.setMaximumHeight(80)
        add_folder = QPushButton("Add folder…")
        add_csv = QPushButton("Add CSV…")
        self.remove_button = QPushButton("Remove")
        add_folder.clicked.connect(self._pick_folder)
        add_csv.clicked.connect(self._pick_csv)
        self.remove_button.clicked.connect(self._remove_selected)
        buttons = QVBoxLayout()
        for b in (add_folder, add_csv, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.sources, 1)
        top.addLayout(buttons)

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("No data chosen yet.")
        self.status.setWordWrap(True)
        self.counts = QTableWidget(0, 2)
        self.counts.setHorizontalHeaderLabels(["Class", "Images"])  # never "1", "2"
        self.counts.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.counts.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.counts.verticalHeader().setVisible(False)
        self.thumbs = QWidget()
        self.thumb_grid = QGridLayout(self.thumbs)
        self.thumb_grid.setContentsMargins(0, 0, 0, 0)
        self.problems = QPlainTextEdit()
        self.problems.setReadOnly(True)
        self.problems.setPlaceholderText("Problems found in the data appear here.")
        self.problems.setMaximumHeight(110)
        # the shortcut risk: each class from a different kind of file (learnt, not the finding)
        self.shortcut_warning = QLabel()
        self.shortcut_warning.setObjectName("shortcut-warning")
        self.shortcut_warning.setWordWrap(True)
        self.shortcut_warning.setStyleSheet(
            "QLabel { background: #4a3510; color: #ffe2a8; border: 1px solid #c98a20;"
            " padding: 6px; }"
        )
        self.shortcut_warning.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.counts)
        layout.addWidget(self.thumbs)
        layout.addWidget(self.shortcut_warning)
        layout.addWidget(QLabel("Problems:"))
        layout.addWidget(self.problems)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.check)

    def _say(self, text: str, problem: bool = False) -> None:
        """The status line; a ``problem`` (a source not added, a failed check) in the
        style sheet's problem colour, not in the colour of "Checking images…"."""
        self.status.setText(text)
        if self.status.property("problem") != problem:
            self.status.setProperty("problem", problem)
            self.status.style().unpolish(self.status)
            self.status.style().polish(self.status)

    # -- sources ----------------------------------------------------------------------------
    def source_paths(self) -> list[str]:
        return [self.sources.item(i).text() for i in range(self.sources.count())]

    def add_source(self, path: str | Path) -> bool:
        """Add a folder or CSV to train on; False, and the path and cause in the status
        line, when it can name neither. Why here: a link loop or a name too long made the
        check raise (a traceback in the log), and a named pipe stayed listed as data."""
        text = str(path)
        problem = source_problem(text)
        if problem is not None:
            self._say(f"Not added: {printable(text)}: {problem}", problem=True)
            return False
        if text not in self.source_paths():
            self.sources.addItem(text)
            self._sources_changed()
        self._say(f"Added: {printable(text)}")  # not an earlier "Not added" until the check
        return True

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with one subfolder per class")
        if folder:
            self.add_source(folder)

    def _pick_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CSV manifest", "", "CSV files (*.csv)")
        if path:
            self.add_source(path)

    def _remove_selected(self) -> None:
        for item in self.sources.selectedItems():
            self.sources.takeItem(self.sources.row(item))
        self._sources_changed()

    def _sources_changed(self) -> None:
        self.outcome = None
        self.completeChanged.emit()
        self._debounce.start()

    # -- checking ------------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        return TrainConfig(data=self.source_paths(), name="unnamed")

    def check(self) -> None:
        """Check the current sources (a running check is cancelled and redone)."""
        if self._checking and self._runner is not None:
            self._pending = True
            self._runner.job.cancel()
            return
        if not self.source_paths():
            self._say("No data chosen yet.")
            self._show_report(None)
            return
        job = CheckJob(self.config())
        job.progress.connect(self._on_progress)
        job.succeeded.connect(self._on_checked)
        job.failed.connect(self._on_failed)
        job.done.connect(self._on_done)
        if self._runner is not None:
            self._runner.wait()  # already done: its job signalled the end
            self._runner.deleteLater()
        self._runner = JobThread(job, self)
        self._checking = True
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self._say("Checking images…")
        self._runner.start()

    def is_checking(self) -> bool:
        return self._checking

    def stop(self) -> None:
        self._debounce.stop()
        if self._runner is not None:
            self._runner.stop()

    @Slot(object)
    def _on_progress(self, p: TrainProgress) -> None:
        if p.total:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
            self._say(f"Checking images… {p.done} of {p.total}")

    @Slot(object)
    def _on_checked(self, outcome: CheckOutcome) -> None:
        self.outcome = outcome
        self._show_report(outcome)
        self.checked.emit(outcome)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.outcome = None
        self._show_report(None)
        self._say(message, problem=True)

    @Slot()
    def _on_done(self) -> None:
        self._checking = False
        self.progress.setVisible(False)
        if self._pending:
            self._pending = False
            QTimer.singleShot(0, self.check)
        self.completeChanged.emit()

    def _show_report(self, outcome: CheckOutcome | None) -> None:
        self.counts.setRowCount(0)
        self.problems.clear()
        self.shortcut_warning.hide()
        while self.thumb_grid.count():
            item = self.thumb_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        if outcome is None:
            return
        report = outcome.report
        pools = list(report.source_counts)
        headers = ["Class", "Images", *(pools if len(pools) > 1 else [])]
        self.counts.setColumnCount(len(headers))
        self.counts.setHorizontalHeaderLabels(headers)
        for cid in report.classes:
            row = self.counts.rowCount()
            self.counts.insertRow(row)
            cells = [report.class_names.get(cid, cid), str(report.counts[cid])]
            if len(pools) > 1:
                cells += [str(report.source_counts[p].get(cid, 0)) for p in pools]
            for col, text in enumerate(cells):
                self.counts.setItem(row, col, QTableWidgetItem(text))
        shown = min(self.counts.rowCount(), 6)  # more classes than that: scroll
        self.counts.setFixedHeight(
            self.counts.horizontalHeader().sizeHint().height()
            + 2 * self.counts.frameWidth()
            + sum(self.counts.rowHeight(r) for r in range(shown))
        )
        for r, cid in enumerate(report.classes):
            label = QLabel(report.class_names.get(cid, cid))
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.thumb_grid.addWidget(label, r, 0)
            for c, image in enumerate(outcome.thumbnails.get(cid, [])):
                thumb = QLabel()
                thumb.setPixmap(gray_pixmap(image))
                thumb.setObjectName(f"thumb-{cid}-{c}")
                self.thumb_grid.addWidget(thumb, r, c + 1)
        shortcuts = [f"Shortcut risk: {text}" for text in outcome.class_warnings]
        self.problems.setPlainText("\n".join([*shortcuts, *report.problems()]))
        self._say(_summary(report))
        if outcome.class_warnings:
            self.shortcut_warning.setText(
                "⚠ Shortcut risk: the classes come from different kinds of file.\n"
                + "\n".join(f"• {text}" for text in outcome.class_warnings)
                + f"\n{SHORTCUT_RISK}"
            )
            self.shortcut_warning.show()

    def isComplete(self) -> bool:
        return self.outcome is not None and self.outcome.report.ok and not self.is_checking()


def source_problem(text: str) -> str | None:
    """Why ``text`` names no folder or file to train on, in the trainer's words; None when
    it may (what is inside is the check's business)."""
    problem = path_problem(text)
    if problem is not None:
        return problem
    kind = non_file_kind(Path(text))
    if kind is not None and kind != "a folder":
        return missing_or_kind(Path(text))
    return None


def _summary(report: DatasetReport) -> str:
    if not report.ok:
        return "Cannot train on this data: " + " ".join(report.errors)
    left_out = len(report.unreadable) + len(report.duplicates) + 2 * len(report.conflicts)
    text = (
        f"{len(report.samples)} usable images in {len(report.classes)} classes"
        f" from {len(report.source_counts)} source(s); {report.patients} patients identified."
    )
    if left_out:
        text += f" {left_out} file(s) left out (see problems)."
    return text


def gray_pixmap(gray8: np.ndarray) -> QPixmap:
    """An (H, W) uint8 array to a pixmap (the QImage is copied off the numpy buffer)."""
    gray8 = np.ascontiguousarray(gray8, dtype=np.uint8)
    height, width = gray8.shape
    image = QImage(gray8.data, width, height, width, QImage.Format.Format_Grayscale8)
    return QPixmap.fromImage(image.copy())
