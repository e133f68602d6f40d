"""The PACS panel against a real Orthanc: echo, find, retrieve into the app's own node,
the worklist filling with predictions, double-click to open, send results back."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import QItemSelectionModel

from tests.gui.conftest import make_window, no_leaked_widgets  # noqa: F401 - fixtures used here
from tests.orthanc import ORTHANC_AET, Orthanc, orthanc_server  # noqa: F401 - fixture
from xraydesk.dicomnet import NodeConfig, make_node
from xraydesk.gui.metadata_panel import MASK
from xraydesk.gui.pacs_panel import PacsPanel

pytestmark = pytest.mark.data
WAIT_MS = 60_000
SAMPLES = ("rsna-cr-jpeg-baseline.dcm", "nih-dx-uncompressed.dcm")


@pytest.fixture
def panel(qtbot, test_model_path: Path, orthanc_server: Orthanc):  # noqa: F811
    pacs = make_node("pacs", ORTHANC_AET, "127.0.0.1", orthanc_server.dicom_port)
    NodeConfig(ae_title="XRAYDESK", port=0, nodes={"pacs": pacs}).save()
    widget = PacsPanel()
    widget.set_model(test_model_path, "cpu")
    widget.resize(900, 900)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown()


def test_echo_find_retrieve_worklist_open_and_send(
    qtbot,
    panel: PacsPanel,
    orthanc_server: Orthanc,  # noqa: F811
    samples_dir: Path,
) -> None:
    assert panel.selected_node_name() == "pacs"
    orthanc_server.add_modality("xraydesk", "XRAYDESK", 1)  # the PACS must know our title
    panel.echo_button.click()
    qtbot.waitUntil(lambda: "pacs answered in" in panel.status_label.text(), timeout=WAIT_MS)

    studies = {}
    for name in SAMPLES:
        orthanc_server.upload(samples_dir / "dicom" / name)
        ds = pydicom.dcmread(samples_dir / "dicom" / name, stop_before_pixels=True)
        studies[ds.StudyInstanceUID] = ds
    nih = next(ds for ds in studies.values() if ds.Modality == "DX")
    panel.patient_edit.setText(str(nih.PatientID))
    with qtbot.waitSignal(panel.studies_found, timeout=WAIT_MS):
        panel.find_button.click()
    assert [m.study_uid for m in panel.studies] == [nih.StudyInstanceUID]
    assert panel.study_table.item(0, 3).text() == MASK  # as in the viewer, until asked
    panel.reveal_button.click()
    assert panel.study_table.item(0, 3).text() == nih.PatientID
    panel.patient_edit.clear()
    with qtbot.waitSignal(panel.studies_found, timeout=WAIT_MS):
        panel.find_button.click()
    assert {m.study_uid for m in panel.studies} >= set(studies)

    panel.listen_button.click()  # the app's own node, on a free port
    assert panel.node is not None
    orthanc_server.add_modality("xraydesk", "XRAYDESK", panel.node.port)
    selection = panel.study_table.selectionModel()
    for row, match in enumerate(panel.studies):
        if match.study_uid in studies:
            index = panel.study_table.model().index(row, 0)
            flags = QItemSelectionModel.SelectionFlag.Select
            selection.select(index, flags | QItemSelectionModel.SelectionFlag.Rows)
    panel.retrieve_button.click()

    def classified() -> bool:
        return sum(item.status == "classified" for item in panel.items) == len(studies)

    qtbot.waitUntil(classified, timeout=WAIT_MS)
    assert panel.worklist_table.rowCount() == len(studies)
    names = {"Normal", "Pneumonia", "COVID-19"}
    for row in range(len(studies)):
        assert panel.worklist_table.item(row, 1).text() == "classified"
        assert panel.worklist_table.item(row, 4).text().rsplit(" ", 1)[0] in names
    with qtbot.waitSignal(panel.open_image_requested, timeout=5000) as opened:
        rect = panel.worklist_table.visualItemRect(panel.worklist_table.item(0, 0))
        panel.worklist_table.cellDoubleClicked.emit(0, 0)
    assert rect is not None
    path = Path(opened.args[0])
    assert path.is_file() and path == panel.items[0].path

    source = samples_dir / "dicom" / SAMPLES[0]
    panel.send_results(source)
    qtbot.waitUntil(lambda: "sent to pacs" in panel.status_label.text(), timeout=WAIT_MS)
    assert panel.status_label.text() == "SR and heat map sent to pacs"
    panel.listen_button.click()
    assert panel.node is None


def test_saving_a_node_and_errors_are_shown(qtbot, panel: PacsPanel) -> None:
    panel.new_name.setText("other")
    panel.new_ae.setText("OTHERPACS")
    panel.new_host.setText("127.0.0.1")
    panel.new_port.setValue(1)  # nothing listens there
    panel.save_node_button.click()
    assert panel.selected_node_name() == "other"
    assert panel.node_combo.count() == 2
    panel.echo_button.click()
    qtbot.waitUntil(lambda: "could not be reached" in panel.status_label.text(), timeout=WAIT_MS)
    panel.new_ae.setText("BAD\\TITLE")
    panel.save_node_button.click()
    assert "not a valid AE title" in panel.status_label.text()


def test_viewer_sends_the_shown_result_to_the_pacs(
    qtbot,
    make_window,  # noqa: F811
    orthanc_server: Orthanc,  # noqa: F811
    samples_dir: Path,
) -> None:
    from PySide6.QtWidgets import QMenu

    from xraydesk.gui.tools import install_pacs

    pacs_node = make_node("pacs", ORTHANC_AET, "127.0.0.1", orthanc_server.dicom_port)
    NodeConfig(ae_title="XRAYDESK", port=0, nodes={"pacs": pacs_node}).save()
    window = make_window()
    panel, send = install_pacs(window)
    try:
        export = window.actions_by_id["export_report"]
        file_menu = next(m for m in export.associatedObjects() if isinstance(m, QMenu))
        assert send in file_menu.actions()
        source = samples_dir / "dicom" / "rsna-cr-jpeg-baseline.dcm"
        assert window.open_path(source)
        qtbot.waitUntil(lambda: window.current_prediction is not None, timeout=WAIT_MS)
        send.trigger()
        qtbot.waitUntil(lambda: "sent to pacs" in panel.status_label.text(), timeout=WAIT_MS)
        uid = pydicom.dcmread(source, stop_before_pixels=True).StudyInstanceUID
        query = {"Level": "Series", "Query": {"StudyInstanceUID": uid}, "Expand": True}
        modalities = {
            s["MainDicomTags"].get("Modality")
            for s in orthanc_server.post_json("/tools/find", query)
        }
        assert {"SR", "OT"} <= modalities
    finally:
        panel.shutdown()
