"""The PACS panel's widgets: node list, new node form, query form, study table, worklist.

Only construction lives here (``PacsPanel`` keeps the behaviour); the widgets become the
panel's attributes under the names its methods and the tests use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from xraydesk.dicomnet.scu import CHEST_MODALITIES
from xraydesk.gui.pacs_parts import make_table

if TYPE_CHECKING:
    from xraydesk.gui.pacs_panel import PacsPanel

MODALITY_CHOICES = {"CR and DX": CHEST_MODALITIES, "CR": ("CR",), "DX": ("DX",)}
STUDY_COLUMNS = ("Date", "Modalities", "Accession", "Patient ID", "Patient", "Description")
WORKLIST_COLUMNS = ("Received", "Status", "Modality", "Patient ID", "Prediction", "Notes")


def build_pacs_layout(panel: PacsPanel) -> None:
    """Create the panel's widgets and connect them to its methods."""
    layout = QVBoxLayout(panel)
    nodes = QGroupBox("PACS nodes")
    row = QHBoxLayout(nodes)
    panel.node_combo = QComboBox()
    panel.node_combo.setPlaceholderText("No PACS node yet: add one below")
    panel.echo_button = QPushButton("Echo")
    panel.echo_button.setToolTip("Check that the selected node answers (C-ECHO)")
    panel.echo_button.clicked.connect(panel.echo_selected)
    panel.remove_node_button = QPushButton("Remove…")
    panel.remove_node_button.setToolTip("Remove the selected node from this computer")
    panel.remove_node_button.clicked.connect(lambda: panel.remove_selected())
    row.addWidget(panel.node_combo, 1)
    row.addWidget(panel.echo_button)
    row.addWidget(panel.remove_node_button)
    layout.addWidget(nodes)

    add = QGroupBox("Add a node")
    form = QHBoxLayout(add)
    panel.new_name, panel.new_ae, panel.new_host = QLineEdit(), QLineEdit(), QLineEdit()
    panel.new_name.setPlaceholderText("name")
    panel.new_ae.setPlaceholderText("AE title")
    panel.new_host.setPlaceholderText("host")
    panel.new_port = QSpinBox()
    panel.new_port.setRange(1, 65535)
    panel.new_port.setValue(104)
    panel.save_node_button = QPushButton("Save")
    panel.save_node_button.clicked.connect(panel.save_node)
    for widget in (panel.new_name, panel.new_ae, panel.new_host, panel.new_port):
        form.addWidget(widget)
    form.addWidget(panel.save_node_button)
    layout.addWidget(add)

    query = QGroupBox("Query")
    qform = QFormLayout(query)
    panel.patient_edit, panel.accession_edit = QLineEdit(), QLineEdit()
    panel.date_from_edit, panel.date_to_edit = QLineEdit(), QLineEdit()
    for edit in (panel.date_from_edit, panel.date_to_edit):
        edit.setPlaceholderText("YYYYMMDD")
    panel.modality_combo = QComboBox()
    panel.modality_combo.addItems(list(MODALITY_CHOICES))
    panel.find_button = QPushButton("Find studies")
    panel.find_button.clicked.connect(panel.find)
    qform.addRow("Patient ID", panel.patient_edit)
    qform.addRow("Accession", panel.accession_edit)
    qform.addRow("From", panel.date_from_edit)
    qform.addRow("To", panel.date_to_edit)
    qform.addRow("Modality", panel.modality_combo)
    qform.addRow(panel.find_button)
    layout.addWidget(query)

    panel.study_table = make_table(STUDY_COLUMNS)
    panel.study_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    panel.retrieve_button = QPushButton("Retrieve selected into this node")
    panel.retrieve_button.clicked.connect(panel.retrieve_selected)
    layout.addWidget(panel.study_table, 1)
    layout.addWidget(panel.retrieve_button)

    incoming = QGroupBox("Incoming worklist")
    ilayout = QVBoxLayout(incoming)
    controls = QHBoxLayout()
    panel.listen_button = QPushButton("Start receiving")
    panel.listen_button.setCheckable(True)
    panel.listen_button.toggled.connect(panel._toggle_node)
    panel.refresh_button = QPushButton("Refresh")
    panel.refresh_button.clicked.connect(panel.refresh_worklist)
    panel.reveal_button = QPushButton("Show patient data")
    panel.reveal_button.setCheckable(True)
    panel.reveal_button.setToolTip(
        "Patient IDs, names and accession numbers are hidden until you ask for them"
    )
    panel.reveal_button.toggled.connect(panel.set_identifiers_revealed)
    controls.addWidget(panel.listen_button)
    controls.addWidget(panel.refresh_button)
    controls.addStretch(1)
    controls.addWidget(panel.reveal_button)
    ilayout.addLayout(controls)
    panel.worklist_table = make_table(WORKLIST_COLUMNS)
    panel.worklist_table.cellDoubleClicked.connect(panel._open_row)
    ilayout.addWidget(panel.worklist_table, 2)
    layout.addWidget(incoming, 2)
    panel.status_label = QLabel()
    panel.status_label.setWordWrap(True)
    layout.addWidget(panel.status_label)
