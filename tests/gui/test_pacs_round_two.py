"""Issue 29 #6: the PACS panel says what is missing, removes nodes, hides identifiers,
and File > Send result to PACS sits with the exports, asks which node, and keeps its
failure on screen. No PACS is needed: a node on a port where nothing listens fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QMenu, QMessageBox

from xraydesk.dicomnet import NodeConfig, WorkItem, Worklist, load_config, make_node
from xraydesk.dicomnet.worklist import CLASSIFIED
from xraydesk.gui.metadata_panel import MASK
from xraydesk.gui.pacs_panel import NO_NODE, PacsPanel
from xraydesk.gui.tools import install_pacs

WAIT_MS = 60_000


def _save_nodes(*names: str) -> None:
    nodes = {n: make_node(n, n.upper(), "127.0.0.1", 1) for n in names}  # nothing on port 1
    NodeConfig(ae_title="XRAYDESK", port=0, nodes=nodes).save()


def _answer_modal(button: QMessageBox.StandardButton) -> QTimer:
    """Press ``button`` in the next modal message box (as the user would)."""
    timer = QTimer()

    def press() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            timer.stop()
            box.button(button).click()

    timer.timeout.connect(press)
    timer.start(20)
    return timer


@pytest.fixture
def panel(qtbot):
    widget = PacsPanel()
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown()


def test_echo_without_a_node_says_so(qtbot, panel):
    assert panel.node_combo.count() == 0
    with qtbot.waitSignal(panel.failed, timeout=5000) as said:
        assert panel.echo_selected() is None
    assert said.args == [NO_NODE]
    assert panel.status_label.text() == NO_NODE


def test_a_node_is_removed_only_after_confirmation(qtbot):
    _save_nodes("first", "second")
    panel = PacsPanel()
    qtbot.addWidget(panel)
    try:
        panel.node_combo.setCurrentIndex(panel.node_combo.findData("second"))
        timer = _answer_modal(QMessageBox.StandardButton.Cancel)
        assert not panel.remove_selected()
        timer.stop()
        assert set(load_config().nodes) == {"first", "second"}
        timer = _answer_modal(QMessageBox.StandardButton.Yes)
        panel.remove_node_button.click()
        timer.stop()
        assert set(load_config().nodes) == {"first"}
        assert panel.node_names() == ["first"]
        assert "Removed" in panel.status_label.text()
    finally:
        panel.shutdown()


def test_worklist_identifiers_are_masked_until_asked_for(qtbot, panel):
    with Worklist() as worklist:
        worklist.add(WorkItem(sop_uid="1.2.3.4", modality="CR", patient_id="PID-4711"))
    panel.refresh_worklist()
    assert panel.worklist_table.rowCount() == 1
    assert panel.worklist_table.item(0, 3).text() == MASK
    texts = [panel.worklist_table.item(0, c).text() for c in range(6)]
    assert "PID-4711" not in " ".join(texts)
    panel.reveal_button.click()
    assert panel.worklist_table.item(0, 3).text() == "PID-4711"
    panel.reveal_button.click()
    assert panel.worklist_table.item(0, 3).text() == MASK


def test_the_worklist_says_indeterminate_and_what_it_finds(qtbot, panel):
    """A classified item with no class named read as an empty Prediction cell; it says
    Indeterminate, with the finding when its class group passed the rule."""
    with Worklist() as worklist:
        for uid, finding in (("1.2.3.5", "pneumonia"), ("1.2.3.6", None)):
            row_id = worklist.add(WorkItem(sop_uid=uid, modality="DX"))
            worklist.set_result(
                row_id, status=CLASSIFIED, model="m 1", probabilities={"a": 0.5, "b": 0.5},
                indeterminate=True, finding=finding,
            )  # fmt: skip
    panel.refresh_worklist()
    shown = sorted(panel.worklist_table.item(r, 4).text() for r in range(2))
    assert shown == ["Indeterminate", "Indeterminate (finds pneumonia)"]
    width = panel.worklist_table.fontMetrics().horizontalAdvance(shown[1])
    assert panel.worklist_table.columnWidth(4) > width  # read in full, not cut


@pytest.mark.data
def test_send_to_pacs_is_with_the_exports_asks_the_node_and_keeps_its_failure(
    qtbot, make_window, dicom_path: Path, monkeypatch
):
    _save_nodes("alpha", "beta")
    window = make_window()
    pacs, send = install_pacs(window)
    file_menu = next(
        m for m in window.actions_by_id["export_image"].associatedObjects() if isinstance(m, QMenu)
    )
    actions = file_menu.actions()
    assert actions.index(send) == actions.index(window.actions_by_id["export_image"]) + 1
    assert actions.index(send) < actions.index(window.actions_by_id["quit"])

    asked: list[list[str]] = []

    def choose(parent, title, label, items, current=0, editable=True, *args, **kwargs):
        asked.append(list(items))
        return "beta", True

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(choose))
    window.open_path(dicom_path)
    qtbot.waitUntil(lambda: window.current_prediction is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(pacs.failed, timeout=WAIT_MS) as failed:
        send.trigger()
    assert asked == [["alpha", "beta"]]
    message = failed.args[0]
    assert "BETA" in message and "could not be reached" in message
    assert window.banner.text == message  # whole, in the banner
    qtbot.wait(300)
    assert window.banner.isVisible() and window.banner.text == message  # until dismissed
    window.banner.dismiss()
    assert window.banner.text == ""
