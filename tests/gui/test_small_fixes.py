"""Issue 19 #9: F1 lists every key the window really has; the wizard's empty data table."""

from __future__ import annotations

from xraydesk.gui.tools import install_tools
from xraydesk.gui.wizard import TrainingWizard


def test_shortcut_list_is_read_from_the_actions_and_includes_ctrl_t(make_window):
    window = make_window()
    install_tools(window)  # adds Model > Train or fine-tune (Ctrl+T)
    dialog = window.show_shortcuts()
    try:
        table = dialog.table
        rows = {
            table.item(r, 1).text(): (table.item(r, 0).text(), table.item(r, 2).text())
            for r in range(table.rowCount())
        }
        assert rows["Train or fine-tune a model…"] == ("Model", "Ctrl+T")
        assert rows["Dismiss message"][1] == "Esc"  # a key with no menu entry is listed too
        assert rows["Open…"][0] == "File"
    finally:
        dialog.close()


def test_wizard_empty_data_table_has_named_headers(qtbot):
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    counts = wizard.data_page.counts
    headers = [counts.horizontalHeaderItem(c).text() for c in range(counts.columnCount())]
    assert headers == ["Class", "Images"]
