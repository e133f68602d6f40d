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

COLUMNS = ("Class", "Precision", "Recall", "F1", "AUC", "Images")


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
        layout.addWidget(self.table)
        layout.addWidget(self.overall)
        layout.addLayout(lower, 1)
        layout.addLayout(buttons)

    def show_result(self, result: TrainResult) -> None:
        card, test = result.card, result.test
        names = card.display_names
        self.summary.setText(
            f"<b>{card.label}</b> saved to {result.card_path}.<br>"
            f"Test accuracy {test['accuracy']:.1%} on {test['n']} images "
            f"(balanced accuracy {test['balanced_accuracy']:.1%})."
        )
        self.table.setRowCount(0)
        for cid, m in test["per_class"].items():
            row = self.table.rowCount()
            self.table.insertRow(row)
            auc = "–" if m["auc"] is None else f"{m['auc']:.3f}"
            cells = (
                names.get(cid, cid),
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['f1']:.3f}",
                auc,
                str(m["support"]),
            )
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        lines = [
            f"Macro AUC {_fmt(test['macro_auc'])}; calibration error (ECE) "
            f"{test['ece']:.3f} after temperature scaling (T = {card.temperature:.2f}), "
            f"{test['uncalibrated']['ece']:.3f} before."
        ]
        pairs = [
            f"{pair.replace('_vs_', ' vs ')} {auc:.3f}"
            for pair, auc in test.get("pairwise_auc", {}).items()
            if auc is not None
        ]
        if pairs:
            lines.append("Pairwise AUC: " + ", ".join(pairs) + ".")
        for pool, m in test.get("per_source", {}).items():
            lines.append(f"{pool}: accuracy {m['accuracy']:.1%} on {m['n']} images.")
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


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
