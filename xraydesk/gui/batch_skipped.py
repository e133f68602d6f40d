"""The window listing the files a batch run passed over, and why."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class SkippedFilesDialog(QDialog):
    """The files a run passed over (hidden, not images), each with the reason."""

    def __init__(
        self, skipped: list[tuple[Path, str]], count: int, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Skipped files ({count})")
        self.resize(760, 420)
        layout = QVBoxLayout(self)
        note = "1 file was not classified." if count == 1 else f"{count} files were not classified."
        if count > len(skipped):
            note += f" The first {len(skipped)} are listed."
        layout.addWidget(QLabel(note))
        self.table = QTableWidget(len(skipped), 3)
        self.table.setHorizontalHeaderLabels(["File", "Reason", "Folder"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTextElideMode(Qt.TextElideMode.ElideLeft)  # a folder's end says most
        for r, (path, reason) in enumerate(skipped):
            for c, text in enumerate((path.name, reason, str(path.parent))):
                item = QTableWidgetItem(text)
                item.setToolTip(str(path))
                self.table.setItem(r, c, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
