"""Studies and series of the current image's folder (and the PACS worklist), priors marked.

Double-click a file to open it; "Compare with selected" hangs any study beside the one
on screen, "Compare with prior" the newest earlier study of the same patient. The
PatientID column is masked unless patient data is shown.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from xraydesk.imaging.studies import StudyGroup, StudyIndex, find_priors, no_prior_reason
from xraydesk.imaging.tags import MASK
from xraydesk.viewer.corners import format_date

COLUMNS = ("Study / series / file", "Date", "Modality", "Files", "Patient ID", "Relation")
PATH_ROLE = Qt.ItemDataRole.UserRole


class StudyBrowser(QDialog):
    open_requested = Signal(object)  # Path
    compare_requested = Signal(object)  # Path

    def __init__(
        self,
        index: StudyIndex,
        current: StudyGroup | None,
        reveal: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("studyBrowser")
        self.setWindowTitle("Studies")
        self.resize(860, 520)
        self.index, self.current = index, current
        self.priors = find_priors(current, index.studies) if current is not None else []
        layout = QVBoxLayout(self)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.itemDoubleClicked.connect(self._open_item)
        layout.addWidget(self.tree, 1)
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.compare_selected_button = QPushButton("Compare with selected")
        self.compare_selected_button.clicked.connect(self._compare_selected)
        self.compare_prior_button = QPushButton("Compare with prior")
        self.compare_prior_button.setEnabled(bool(self.priors))
        self.compare_prior_button.clicked.connect(self.compare_prior)
        buttons.addButton(self.compare_selected_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.compare_prior_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.fill(reveal)

    def fill(self, reveal: bool) -> None:
        self.tree.clear()
        prior_uids = {s.study_uid for s in self.priors}
        for study in self.index.studies:
            mark = self._relation(study, prior_uids)
            patient = (study.patient_id if reveal else MASK) if study.patient_id else ""
            title = study.description or f"Study ({study.first_file.name})"
            top = QTreeWidgetItem(
                [
                    title,
                    format_date(study.study_date),
                    study.modalities,
                    str(len(study.files)),
                    patient,
                    mark,
                ]
            )
            top.setData(0, PATH_ROLE, str(study.first_file))
            for series in study.series:
                name = f"Series {series.number}" if series.number is not None else "Series"
                label = f"{name}  {series.description}".strip()
                child = QTreeWidgetItem([label, "", series.modality, str(len(series.files))])
                child.setData(0, PATH_ROLE, str(series.files[0]))
                for path in series.files:
                    leaf = QTreeWidgetItem([path.name])
                    leaf.setData(0, PATH_ROLE, str(path))
                    leaf.setToolTip(0, str(path))
                    child.addChild(leaf)
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setExpanded(mark in ("on screen", "prior (newest)", "prior"))
        for column in range(len(COLUMNS)):
            self.tree.resizeColumnToContents(column)
        self.note.setText(self._note())

    def _relation(self, study: StudyGroup, prior_uids: set[str]) -> str:
        """How a study relates to the one on screen, without showing who the patient is."""
        current = self.current
        if current is None:
            return ""
        if study.study_uid == current.study_uid:
            return "on screen"
        if study.study_uid in prior_uids:
            return "prior (newest)" if study is self.priors[0] else "prior"
        if current.patient_id and study.patient_id == current.patient_id:
            return "same patient"
        return "other patient" if current.patient_id and study.patient_id else ""

    def _note(self) -> str:
        studies = len(self.index.studies)
        text = f"{studies} stud{'y' if studies == 1 else 'ies'}"
        if self.index.skipped:
            text += f"; {len(self.index.skipped)} file(s) not grouped (not DICOM studies)"
        reason = no_prior_reason(self.current)
        if reason:
            return f"{text}. No prior can be looked for: {reason}."
        if not self.priors:
            return f"{text}. No earlier study of this patient here."
        newest = format_date(self.priors[0].study_date)
        count = len(self.priors)
        return f"{text}. {count} prior stud{'y' if count == 1 else 'ies'}, newest {newest}."

    def selected_path(self) -> Path | None:
        item = self.tree.currentItem()
        value = item.data(0, PATH_ROLE) if item is not None else None
        return Path(value) if value else None

    def _open_item(self, item: QTreeWidgetItem, _column: int) -> None:
        value = item.data(0, PATH_ROLE)
        if value and item.childCount() == 0:
            self.open_requested.emit(Path(value))

    def _compare_selected(self) -> None:
        path = self.selected_path()
        if path is not None:
            self.compare_requested.emit(path)

    def compare_prior(self) -> None:
        if self.priors:
            self.compare_requested.emit(self.priors[0].first_file)
