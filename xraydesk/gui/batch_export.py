"""What the batch panel's export asks: every row, or only those the filters show."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def export_dialog_title(fmt: str, count: int, total: int) -> str:
    """The save dialog's title names what will be written, e.g. "Export CSV: 12 of 340
    rows (filtered)", so a filtered export is never mistaken for the whole run."""
    if count == total:
        return f"Export {fmt.upper()}: all {total} rows"
    return f"Export {fmt.upper()}: {count} of {total} rows (filtered)"


def ask_export_rows(parent: QWidget, shown: int, total: int) -> str | None:
    """ "shown" or "all" (None when cancelled); asks only when a filter hides rows."""
    if shown == total:
        return "all"
    box = QMessageBox(parent)
    box.setWindowTitle("Export")
    box.setIcon(QMessageBox.Icon.Question)
    box.setText(f"The filters show {shown} of {total} rows. Which rows should be exported?")
    filtered = box.addButton(f"The {shown} shown", QMessageBox.ButtonRole.AcceptRole)
    every = box.addButton(f"All {total}", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(filtered)
    box.exec()
    clicked = box.clickedButton()
    return "shown" if clicked is filtered else "all" if clicked is every else None
