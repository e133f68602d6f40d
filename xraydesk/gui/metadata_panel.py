"""Image facts for the reader; identifying fields stay masked until asked for.

Patient name, ID and birth date are put into the labels only when the user presses
"Show patient data", and are masked again for every new image, so a screenshot or a
shoulder-surfer sees nothing identifying by default. They are never logged.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from xraydesk.gui.results_panel import section_title
from xraydesk.imaging.xray import PatientInfo, XRay

MASK = "•••••• hidden"
NOT_RECORDED = "—"
FIELD_NAME_WIDTH = 108


def format_dicom_date(value: str | None) -> str:
    """YYYYMMDD as YYYY-MM-DD (ISO, unambiguous across locales); other text unchanged."""
    if not value:
        return NOT_RECORDED
    text = value.strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def format_person_name(value: str | None) -> str:
    """DICOM PN (FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX) as readable text."""
    if not value:
        return NOT_RECORDED
    family, _, rest = value.partition("^")
    given = " ".join(part for part in rest.split("^") if part)
    return f"{family}, {given}" if family and given else (family or given)


class MetadataPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("metadataPanel")
        self._patient = PatientInfo()
        self._revealed = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(8)

        layout.addWidget(section_title("Image"))
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.form.setHorizontalSpacing(14)
        self.form.setVerticalSpacing(5)
        self.fields: dict[str, QLabel] = {}
        for key in (
            "File",
            "Format",
            "Modality",
            "View",
            "Body part",
            "Study date",
            "Pixel spacing",
            "Size",
            "Window (file)",
            "Photometric",
            "Transfer syntax",
        ):
            self.fields[key] = self._add_row(self.form, key)
        layout.addLayout(self.form)
        self.notes_label = QLabel()
        self.notes_label.setObjectName("dim")
        self.notes_label.setWordWrap(True)
        layout.addWidget(self.notes_label)

        layout.addSpacing(8)
        layout.addWidget(section_title("Patient"))
        patient_form = QFormLayout()
        patient_form.setHorizontalSpacing(14)
        patient_form.setVerticalSpacing(5)
        self.patient_fields = {
            key: self._add_row(patient_form, key) for key in ("Name", "Patient ID", "Birth date")
        }
        layout.addLayout(patient_form)
        self.reveal_button = QPushButton("Show patient data")
        self.reveal_button.setCheckable(True)
        self.reveal_button.setToolTip(
            "Identifying fields are hidden by default and for every new image"
        )
        self.reveal_button.toggled.connect(self.set_patient_revealed)
        layout.addWidget(self.reveal_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self.show_xray(None)

    @staticmethod
    def _add_row(form: QFormLayout, key: str) -> QLabel:
        value = QLabel(NOT_RECORDED)
        value.setWordWrap(True)
        value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        name = QLabel(key)
        name.setObjectName("fieldName")
        name.setMinimumWidth(FIELD_NAME_WIDTH)  # the image and patient forms line up
        form.addRow(name, value)
        return value

    def show_xray(self, xray: XRay | None) -> None:
        """Show an image's facts (None: clear); patient fields are masked again."""
        meta = xray.metadata if xray else None
        values: dict[str, str] = dict.fromkeys(self.fields, NOT_RECORDED)
        if xray is not None and meta is not None:
            rows, cols = xray.shape
            values.update(
                {
                    "File": meta.path.name,
                    "Format": meta.format,
                    "Modality": meta.modality or NOT_RECORDED,
                    "View": meta.view_position or NOT_RECORDED,
                    "Body part": meta.body_part or NOT_RECORDED,
                    "Study date": format_dicom_date(meta.study_date),
                    "Pixel spacing": (
                        f"{meta.pixel_spacing[0]:g} × {meta.pixel_spacing[1]:g} mm"
                        if meta.pixel_spacing
                        else NOT_RECORDED
                    ),
                    "Size": f"{cols} × {rows} px, {xray.bits_stored} bits",
                    "Window (file)": f"W {xray.window.width:g}  L {xray.window.center:g}",
                    "Photometric": meta.photometric_interpretation or NOT_RECORDED,
                    "Transfer syntax": meta.transfer_syntax or NOT_RECORDED,
                }
            )
            self.fields["File"].setToolTip(str(meta.path))
        for key, label in self.fields.items():
            label.setText(values[key])
        notes = list(xray.notes) if xray else []
        self.notes_label.setText("\n".join(notes))
        self.notes_label.setVisible(bool(notes))
        self._patient = xray.patient if xray else PatientInfo()
        has_patient = any((self._patient.name, self._patient.patient_id, self._patient.birth_date))
        self.reveal_button.setEnabled(has_patient)
        self.reveal_button.setChecked(False)
        self.set_patient_revealed(False)

    def set_patient_revealed(self, revealed: bool) -> None:
        self._revealed = revealed
        patient = self._patient
        shown = {
            "Name": format_person_name(patient.name),
            "Patient ID": patient.patient_id or NOT_RECORDED,
            "Birth date": format_dicom_date(patient.birth_date),
        }
        for key, label in self.patient_fields.items():
            if revealed or shown[key] == NOT_RECORDED:
                label.setText(shown[key])
            else:
                label.setText(MASK)
        self.reveal_button.setText("Hide patient data" if revealed else "Show patient data")

    @property
    def patient_revealed(self) -> bool:
        return self._revealed
