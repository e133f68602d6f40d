"""The DICOM tag browser: every element of the file on screen, searchable.

Identifying values (names, IDs, birth date, accession, addresses) are masked unless the
reader has asked to see patient data (the Image info panel's switch, which the main
window passes on), and a search never matches a masked value.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from xraydesk.imaging.tags import TagRow, filter_rows, read_tag_rows

COLUMNS = ("Tag", "Keyword", "VR", "Value")


class TagBrowser(QDialog):
    """Non-modal: the image stays readable beside it."""

    def __init__(self, path: Path, reveal: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tagBrowser")
        self.setWindowTitle(f"DICOM tags: {path.name}")
        self.resize(820, 640)
        self.path = path
        self.rows: list[TagRow] = read_tag_rows(path)  # ImageLoadError: the caller says why
        self.reveal = reveal
        layout = QVBoxLayout(self)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter by tag, keyword or value (e.g. 0028, Spacing)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.refresh)
        layout.addWidget(self.search)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        for column in range(3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout.addWidget(self.tree, 1)
        self.note = QLabel()
        self.note.setObjectName("dim")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.refresh()

    def set_reveal(self, reveal: bool) -> None:
        self.reveal = bool(reveal)
        self.refresh()

    def refresh(self) -> None:
        rows = filter_rows(self.rows, self.search.text(), self.reveal)
        self.tree.clear()
        self.tree.addTopLevelItems([self._item(row) for row in rows])
        if self.search.text().strip():
            self.tree.expandAll()
        hidden = "" if self.reveal else "Identifying values are hidden (Show patient data). "
        self.note.setText(f"{hidden}{len(rows)} of {len(self.rows)} elements shown.")

    def _item(self, row: TagRow) -> QTreeWidgetItem:
        item = QTreeWidgetItem(
            [row.tag, row.keyword or row.name, row.vr, row.shown_value(self.reveal)]
        )
        item.setToolTip(1, row.name)
        item.setData(0, Qt.ItemDataRole.UserRole, row.keyword)
        item.addChildren([self._item(child) for child in row.children])
        return item

    def values(self) -> dict[str, str]:
        """Keyword -> shown value of the top-level rows on screen (for tests and copy)."""
        out = {}
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            out[item.data(0, Qt.ItemDataRole.UserRole) or item.text(1)] = item.text(3)
        return out
