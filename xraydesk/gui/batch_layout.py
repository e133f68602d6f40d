"""The batch panel's widgets and layout, built onto the panel (its attributes are the
panel's public widgets: tests and the main window reach them there)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from xraydesk.gui.batch_results import BatchFilterProxy, BatchResultsModel, ElideDelegate

if TYPE_CHECKING:
    from xraydesk.batch.rows import ResultRow
    from xraydesk.gui.batch_panel import BatchPanel


def build_panel(panel: BatchPanel) -> None:
    layout = QVBoxLayout(panel)
    panel.model_label = QLabel()
    panel.model_label.setObjectName("batch-model")
    layout.addWidget(panel.model_label)
    layout.addLayout(build_folder_row(panel))
    layout.addLayout(build_options_row(panel))
    layout.addLayout(build_progress(panel))
    layout.addLayout(build_filters_row(panel))
    splitter = QSplitter(Qt.Orientation.Vertical)
    table_box = QWidget()
    table_layout = QVBoxLayout(table_box)
    table_layout.setContentsMargins(0, 0, 0, 0)
    table_layout.addWidget(build_table(panel), 1)
    # the selected row in full: its error in sight even when Status is scrolled away
    panel.row_details = QLabel("Select a row to see its file and status in full.")
    panel.row_details.setObjectName("batch-row-details")
    panel.row_details.setWordWrap(True)
    panel.row_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    table_layout.addWidget(panel.row_details)
    splitter.addWidget(table_box)
    splitter.addWidget(build_past_runs(panel))
    splitter.setStretchFactor(0, 4)
    splitter.setStretchFactor(1, 1)
    layout.addWidget(splitter, 1)


def build_folder_row(panel: BatchPanel) -> QHBoxLayout:
    row = QHBoxLayout()
    panel.folder_edit = QLineEdit()
    panel.folder_edit.setPlaceholderText("Folder of radiographs")
    panel.browse_button = QPushButton("Choose folder…")
    row.addWidget(panel.folder_edit, 1)
    row.addWidget(panel.browse_button)
    return row


def build_options_row(panel: BatchPanel) -> QVBoxLayout:
    """Options on one line, Start and Cancel on the next: narrow enough for a dock
    beside the image."""
    box = QVBoxLayout()
    row = QHBoxLayout()
    panel.recursive_check = QCheckBox("Include subfolders")
    panel.recursive_check.setChecked(True)
    panel.no_skip_check = QCheckBox("Classify again")
    panel.no_skip_check.setToolTip(
        "Classify every file again, even those this model already classified "
        "(otherwise their stored results are reused)"
    )
    panel.cam_check = QCheckBox("Grad-CAM images")
    panel.cam_check.setToolTip("Save a Grad-CAM overlay PNG of every image into a folder")
    panel.start_button = QPushButton("Start")
    panel.cancel_button = QPushButton("Cancel")
    for widget in (panel.recursive_check, panel.no_skip_check, panel.cam_check):
        row.addWidget(widget)
    row.addStretch(1)
    buttons = QHBoxLayout()
    buttons.addStretch(1)
    buttons.addWidget(panel.start_button)
    buttons.addWidget(panel.cancel_button)
    box.addLayout(row)
    box.addLayout(buttons)
    return box


def build_progress(panel: BatchPanel) -> QVBoxLayout:
    """Progress bar, progress line and the (hidden until needed) message."""
    box = QVBoxLayout()
    panel.progress_bar = QProgressBar()
    panel.progress_bar.setFormat("Ready")  # no "0 / 100" before a run
    panel.progress_bar.setValue(0)
    panel.progress_label = QLabel(" ")
    panel.progress_label.setObjectName("batch-progress")
    panel.message_label = QLabel()
    panel.message_label.setObjectName("batch-message")
    panel.message_label.setWordWrap(True)
    panel.message_label.hide()
    panel.skipped_button = QPushButton()
    panel.skipped_button.setObjectName("batch-skipped")
    panel.skipped_button.setToolTip("The files this run passed over, and why")
    panel.skipped_button.setFlat(True)
    panel.skipped_button.hide()
    status = QHBoxLayout()
    status.addWidget(panel.progress_label, 1)
    status.addWidget(panel.skipped_button)
    box.addWidget(panel.progress_bar)
    box.addLayout(status)
    box.addWidget(panel.message_label)
    return box


def build_filters_row(panel: BatchPanel) -> QVBoxLayout:
    """The filters on one line, the exports on the next."""
    box = QVBoxLayout()
    row = QHBoxLayout()
    panel.class_filter = QComboBox()
    panel.class_filter.addItem("All predictions", None)
    panel.threshold_spin = QDoubleSpinBox()
    panel.threshold_spin.setRange(0.0, 100.0)
    panel.threshold_spin.setDecimals(0)
    panel.threshold_spin.setSingleStep(5.0)
    panel.threshold_spin.setSuffix(" %")
    panel.threshold_spin.setPrefix("≥ ")
    panel.threshold_spin.setToolTip("Only rows whose predicted class has at least this probability")
    panel.errors_check = QCheckBox("Errors only")
    panel.flagged_check = QCheckBox("Flagged only")
    panel.flagged_check.setToolTip(
        "Only rows with warnings: not a chest radiograph, rotated, inverted, low quality, "
        "out of distribution..."
    )
    row.addWidget(QLabel("Show"))
    for widget in (panel.class_filter, panel.threshold_spin, panel.errors_check):
        row.addWidget(widget)
    row.addWidget(panel.flagged_check)
    row.addStretch(1)
    exports = QHBoxLayout()
    panel.count_label = QLabel()
    panel.count_label.setObjectName("batch-count")
    exports.addWidget(panel.count_label)
    exports.addStretch(1)
    panel.export_csv_button = QPushButton("Export CSV…")
    panel.export_json_button = QPushButton("Export JSON…")
    for button in (panel.export_csv_button, panel.export_json_button):
        button.setToolTip("Save the rows shown (filters and sorting applied)")
        exports.addWidget(button)
    box.addLayout(row)
    box.addLayout(exports)
    return box


def build_table(panel: BatchPanel) -> QTableView:
    panel.results_model = BatchResultsModel(panel)
    panel.proxy = BatchFilterProxy(panel)
    panel.proxy.setSourceModel(panel.results_model)
    panel.table = table = QTableView()
    table.setObjectName("batch-results")
    table.setModel(panel.proxy)
    table.setSortingEnabled(True)
    table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until asked
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)  # one line per row, elided where the delegates say
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.horizontalHeader().setStretchLastSection(True)
    table.setToolTip("Double-click a row to open the image in the viewer")
    panel._name_delegate = ElideDelegate(Qt.TextElideMode.ElideMiddle, table)
    panel._folder_delegate = ElideDelegate(Qt.TextElideMode.ElideLeft, table)
    table.setItemDelegateForColumn(0, panel._name_delegate)
    for signal in (
        panel.proxy.rowsInserted,
        panel.proxy.rowsRemoved,
        panel.proxy.modelReset,
        panel.proxy.layoutChanged,
        panel.results_model.rowsInserted,  # the filter's counts, for rows it hides too
    ):
        signal.connect(panel._update_count)
    return table


def build_past_runs(panel: BatchPanel) -> QWidget:
    past = QWidget()
    layout = QVBoxLayout(past)
    layout.setContentsMargins(0, 0, 0, 0)
    header = QHBoxLayout()
    header.addWidget(QLabel("Past runs"))
    header.addStretch(1)
    panel.open_run_button = QPushButton("Open")
    header.addWidget(panel.open_run_button)
    layout.addLayout(header)
    panel.runs_list = QListWidget()
    panel.runs_list.setObjectName("batch-runs")
    layout.addWidget(panel.runs_list)
    return past


def fit_prediction_column(table: QTableView, rows: Sequence[ResultRow]) -> None:
    """Widen Prediction (never narrow it) so an indeterminate row's finding reads in full:
    "Indeterminate (finds pneumonia)" cut to "Indeterminate …" hid the finding."""
    words = {row.outcome_words for row in rows if row.finding}
    if not words:
        return
    needed = max(table.fontMetrics().horizontalAdvance(text) for text in words) + 16
    header = table.horizontalHeader()
    if header.sectionSize(1) < needed:
        header.resizeSection(1, needed)


def row_status(row: ResultRow, names: dict[str, str]) -> str:
    """The selected row's status line: its error, its class and probability, or what an
    indeterminate row still finds."""
    if row.error:
        return f"Error: {row.error}"
    if row.prediction is not None:
        confidence = f" ({row.confidence:.1%})" if row.confidence is not None else ""
        reused = ", stored result reused" if row.reused else ""
        return f"{names.get(row.prediction, row.prediction)}{confidence}{reused}"
    return f"{row.outcome_words}: no class given (see the warnings)"  # classified, no class
