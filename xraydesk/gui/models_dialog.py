"""The model library in the app: list, rename, delete, use.

Bundled models are listed but read-only; the user's own (fine-tuned) models can be
renamed or deleted. The same library functions back ``xraydesk models``.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from xraydesk.errors import XRayDeskError
from xraydesk.gui.card_html import figures_html
from xraydesk.model.card import ModelCard
from xraydesk.model.library import delete_user_model, list_models, rename_user_model
from xraydesk.trainer.metrics import MIN_TEST_PER_CLASS, format_with_interval, headline_metrics

COLUMNS = ("Name", "Version", "Source", "Classes", "Created", "Test accuracy (95 % CI)", "Test n")
SMALL_TEST_TIP = (
    "Fewer than {min_n} test images in its smallest class ({n}): too few to compare models "
    "by. The interval shows how uncertain the accuracy is."
)


class ModelsDialog(QDialog):
    model_chosen = Signal(Path)  # card path: make it the active model
    models_changed = Signal()  # after a rename or delete: re-read the library

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("models-dialog")
        self.setWindowTitle("Models")
        self.resize(980, 620)
        self.cards: list[ModelCard] = []
        self.last_error = ""
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.note = QLabel("Bundled models come with XRayDesk and cannot be renamed or deleted.")
        self.note.setWordWrap(True)
        self.small_warning = QLabel()
        self.small_warning.setObjectName("warning")
        self.small_warning.setWordWrap(True)
        self.use_button = QPushButton("Use")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        close = QPushButton("Close")
        self.use_button.clicked.connect(self.use_selected)
        self.rename_button.clicked.connect(lambda: self.rename_selected())
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        close.clicked.connect(self.accept)
        self.table.itemSelectionChanged.connect(self._sync_buttons)
        # the selected model's per-class and per-pool figures, so a model is chosen on its evidence
        self.details = QTextBrowser()
        self.details.setObjectName("model-figures")
        self.details.setMinimumHeight(170)
        self.table.itemDoubleClicked.connect(lambda _item: self.use_selected())
        buttons = QHBoxLayout()
        for b in (self.use_button, self.rename_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.details, 3)
        layout.addWidget(self.small_warning)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        self.cards = list_models()
        self.table.setRowCount(0)
        small = 0
        for card in self.cards:
            row = self.table.rowCount()
            self.table.insertRow(row)
            head = headline_metrics(card.metrics.get("test") or {})
            accuracy = (
                "–"
                if head["accuracy"] is None
                else format_with_interval(head["accuracy"], head["accuracy_ci95"], percent=True)
            )
            cells = (
                card.name,
                card.version,
                card.source,
                ", ".join(c.name for c in card.classes),
                card.created,
                accuracy,
                str(head["n"]) if head["n"] else "–",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(card.path))
                self.table.setItem(row, col, item)
            if head["small"] and head["accuracy"] is not None:
                small += 1
                tip = SMALL_TEST_TIP.format(min_n=MIN_TEST_PER_CLASS, n=head["min_class_n"])
                for col in (5, 6):
                    item = self.table.item(row, col)
                    item.setText(f"⚠ {item.text()}")
                    item.setToolTip(tip)
            if card.name == select:
                self.table.selectRow(row)
        self.small_warning.setText(
            f"⚠ {small} model(s) were tested on fewer than {MIN_TEST_PER_CLASS} images in a "
            "class: their accuracy is uncertain (see the interval), do not rank them by it."
        )
        self.small_warning.setVisible(small > 0)
        self._sync_buttons()

    def selected(self) -> ModelCard | None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        return self.cards[rows.pop()] if len(rows) == 1 else None

    def select(self, name: str) -> None:
        for row, card in enumerate(self.cards):
            if card.name == name:
                self.table.selectRow(row)

    def _sync_buttons(self) -> None:
        card = self.selected()
        self.details.setHtml(
            f"<h3>{html.escape(card.label)}</h3>{figures_html(card)}"
            if card is not None
            else "<p>Select a model to see its figures per class and per pool.</p>"
        )
        own = card is not None and card.source == "user"
        self.use_button.setEnabled(card is not None)
        self.rename_button.setEnabled(own)
        self.delete_button.setEnabled(own)

    def use_selected(self) -> None:
        card = self.selected()
        if card is not None and card.path is not None:
            self.model_chosen.emit(Path(card.path))

    def rename_selected(self, new_name: str | None = None) -> bool:
        """Rename the selected user model (asks for the name when none is given)."""
        card = self.selected()
        if card is None or card.source != "user":
            return False
        if new_name is None:
            new_name, ok = QInputDialog.getText(self, "Rename model", "New name:", text=card.name)
            if not ok:
                return False
        try:
            renamed = rename_user_model(card.name, new_name.strip())
        except XRayDeskError as exc:
            self._error(str(exc))
            return False
        self.refresh(select=renamed.name)
        self.models_changed.emit()
        return True

    def delete_selected(self, confirmed: bool = False) -> bool:
        """Delete the selected user model, its weights and its training files."""
        card = self.selected()
        if card is None or card.source != "user":
            return False
        if not confirmed:
            answer = QMessageBox.question(
                self,
                "Delete model",
                f"Delete {card.label}? Its weights and training files are removed.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            delete_user_model(card.name)
        except XRayDeskError as exc:
            self._error(str(exc))
            return False
        self.refresh()
        self.models_changed.emit()
        return True

    def _error(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Models", message, parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.last_error = message
        self.error_box = box
