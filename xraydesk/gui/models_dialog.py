"""The model library in the app: list, rename, delete, use.

Bundled models are listed but read-only; the user's own (fine-tuned) models can be
renamed or deleted. The same library functions back ``xraydesk models``.
"""

from __future__ import annotations

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
    QVBoxLayout,
    QWidget,
)

from xraydesk.errors import XRayDeskError
from xraydesk.model.card import ModelCard
from xraydesk.model.library import delete_user_model, list_models, rename_user_model

COLUMNS = ("Name", "Version", "Source", "Classes", "Created", "Test accuracy")


class ModelsDialog(QDialog):
    model_chosen = Signal(Path)  # card path: make it the active model
    models_changed = Signal()  # after a rename or delete: re-read the library

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("models-dialog")
        self.setWindowTitle("Models")
        self.resize(760, 360)
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
        self.use_button = QPushButton("Use")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        close = QPushButton("Close")
        self.use_button.clicked.connect(self.use_selected)
        self.rename_button.clicked.connect(lambda: self.rename_selected())
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        close.clicked.connect(self.accept)
        self.table.itemSelectionChanged.connect(self._sync_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self.use_selected())
        buttons = QHBoxLayout()
        for b in (self.use_button, self.rename_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        self.cards = list_models()
        self.table.setRowCount(0)
        for card in self.cards:
            row = self.table.rowCount()
            self.table.insertRow(row)
            accuracy = card.metrics.get("test", {}).get("accuracy")
            cells = (
                card.name,
                card.version,
                card.source,
                ", ".join(c.name for c in card.classes),
                card.created,
                "–" if accuracy is None else f"{accuracy:.1%}",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(card.path))
                self.table.setItem(row, col, item)
            if card.name == select:
                self.table.selectRow(row)
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
