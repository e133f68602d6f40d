"""Wizard page 4: how good is the new model, and use it.

Metrics on the held-out test split (per class and overall, calibration included),
the confusion matrix and one-vs-rest ROC curves. "Use this model" hands the card path
to whoever opened the wizard (the main window makes it the active model).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xraydesk.gui.wizard.charts import SERIES_COLORS, ConfusionMatrixTable, LineChart
from xraydesk.trainer import TrainResult
from xraydesk.trainer.metrics import MIN_TEST_PER_CLASS, format_with_interval, headline_metrics

COLUMNS = ("Class", "Test images (n)", "Precision (95 % CI)", "Recall (95 % CI)", "F1", "AUC")


class ResultsPage(QWizardPage):
    use_model = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Results")
        self.setSubTitle(
            "Measured on test images the model never saw, from the same sources as the "
            "training data: expect lower accuracy on images from elsewhere."
        )
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.small_warning = QLabel()  # below MIN_TEST_PER_CLASS test images in a class
        self.small_warning.setObjectName("warning")
        self.small_warning.setWordWrap(True)
        self.small_warning.hide()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.overall = QLabel()
        self.overall.setWordWrap(True)
        self.confusion = ConfusionMatrixTable()
        self.roc = LineChart(
            "ROC (one class vs the rest)",
            "false positive rate",
            "true positive rate",
            x_range=(0.0, 1.0),
            y_range=(0.0, 1.0),
            diagonal=True,
        )
        self.use_button = QPushButton("Use this model")
        self.use_button.setDefault(True)
        self.use_button.clicked.connect(self.use_model)

        lower = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(QLabel("Confusion matrix (rows: true class)"))
        left.addWidget(self.confusion)
        lower.addLayout(left, 1)
        lower.addWidget(self.roc, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.small_warning)
        layout.addWidget(self.table)
        layout.addWidget(self.overall)
        layout.addLayout(lower, 1)
        layout.addLayout(buttons)

    def show_result(self, result: TrainResult) -> None:
        """Every metric with its sample size and 95 % interval: a figure without its n misleads."""
        card, test = result.card, result.test
        names = card.display_names
        head = headline_metrics(test)
        accuracy = format_with_interval(head["accuracy"], head["accuracy_ci95"], percent=True)
        self.summary.setText(
            f"<b>{card.label}</b> saved to {result.card_path}.<br>"
            f"Test accuracy {accuracy} on n = {head['n']} images "
            f"(balanced accuracy {test['balanced_accuracy']:.1%})."
        )
        if head["small"]:
            self.small_warning.setText(
                f"⚠ Only {head['min_class_n']} test images in the smallest class (fewer than "
                f"{MIN_TEST_PER_CLASS}): these numbers are too uncertain to compare models "
                "by; the intervals show how wide the doubt is. Add data for a reliable test."
            )
        self.small_warning.setVisible(bool(head["small"]))
        self.table.setRowCount(0)
        for cid, m in test["per_class"].items():
            row = self.table.rowCount()
            self.table.insertRow(row)
            cells = (
                names.get(cid, cid),
                str(m["support"]),
                format_with_interval(m["precision"], m.get("precision_ci95")),
                format_with_interval(m["recall"], m.get("recall_ci95")),
                f"{m['f1']:.3f}",
                format_with_interval(m["auc"], m.get("auc_ci95")),
            )
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        macro = format_with_interval(head["macro_auc"], head["macro_auc_ci95"])
        lines = [f"Macro AUC {macro} on n = {head['n']}; {_calibration_text(test, card)}"]
        pairs = [
            f"{pair.replace('_vs_', ' vs ')} {auc:.3f}"
            for pair, auc in test.get("pairwise_auc", {}).items()
            if auc is not None
        ]
        if pairs:
            lines.append("Pairwise AUC: " + ", ".join(pairs) + ".")
        for pool, m in test.get("per_source", {}).items():
            pool_ci = headline_metrics(m)["accuracy_ci95"]  # Wilson, from its n
            pool_acc = format_with_interval(m["accuracy"], pool_ci, percent=True)
            lines.append(f"{pool}: accuracy {pool_acc} on n = {m['n']} images.")
        self.overall.setText("<br>".join(lines))
        _fit_height(self.table)
        self.confusion.set_matrix(
            test["confusion_matrix"], [names.get(c, c) for c in test["classes"]]
        )
        self.roc.clear()
        for k, (cid, points) in enumerate(test.get("roc", {}).items()):
            if points:
                self.roc.set_series(names.get(cid, cid), points, SERIES_COLORS[k % 7])


def _fit_height(table: QTableWidget) -> None:
    """Show every row without an empty area below (tables here have a handful of rows)."""
    height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
    height += sum(table.rowHeight(r) for r in range(table.rowCount()))
    table.setFixedHeight(height)


def _calibration_text(test: dict, card) -> str:
    """What was done about calibration, and why (temperature kept at 1 when it did not help)."""
    before = test["uncalibrated"]["ece"]
    decision = (card.metrics or {}).get("calibration") or {}
    if card.temperature == 1.0 and decision and not decision.get("applied", True):
        return (
            f"calibration error (ECE) {before:.3f}; temperature scaling was not applied "
            "because it did not lower the validation error."
        )
    return (
        f"calibration error (ECE) {test['ece']:.3f} after temperature scaling "
        f"(T = {card.temperature:.2f}), {before:.3f} before."
    )
