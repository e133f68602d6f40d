"""The "Validate a model on your images" page, beside the fine-tuning wizard.

A front door over ``xraydesk.validate`` (the engine of ``xraydesk validate``): the user
picks a model and a folder of labelled images (class subfolders, or a CSV of path and
label), the run goes off the GUI thread (``ValidateJob``, the ``gui.jobs`` idiom) with a
progress bar, and the report's figures appear in the window: per-class figures with
their intervals, the shares flagged and withheld, and where the site is worse than the
model card. "Save report…" writes the same JSON and PDF as the command. With "Adopt a
site profile" the run fits the site's calibration on half the images and shows the
other half's figures with and without it; the profile is then used for this model.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from xraydesk.errors import XRayDeskError
from xraydesk.gui import validate_view as view
from xraydesk.gui.jobs import JobThread
from xraydesk.gui.validate_job import (
    ValidateJob,
    ValidationOutcome,
    ValidationRequest,
    save_report,
)


class ValidatePage(QDialog):
    """Non-modal: the viewer stays usable while the images are classified."""

    finished_run = Signal(object)  # ValidationOutcome, or None when it failed or stopped
    profile_adopted = Signal(str)  # card path of a model whose site profile was adopted/removed

    def __init__(
        self, parent: QWidget | None = None, model: Path | None = None, device: str = "auto"
    ) -> None:
        super().__init__(parent)
        self.setObjectName("validate-page")
        self.setWindowTitle("Validate a model on your images")
        self.resize(900, 760)
        self.device = device
        self.outcome: ValidationOutcome | None = None
        self.thread: JobThread | None = None
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_form(model))
        layout.addLayout(self._build_run())
        layout.addWidget(self._build_results(), 1)

    # -- layout ---------------------------------------------------------------------------
    def _build_form(self, model: Path | None) -> QFormLayout:
        from xraydesk.model.library import list_models

        form = QFormLayout()
        self.model_combo = QComboBox()
        for card in list_models():
            self.model_combo.addItem(card.label, str(card.path))
        if model is not None:  # the viewer's model, also when it is outside the library
            if self.model_combo.findData(str(model)) < 0:
                self.model_combo.addItem(_label(model), str(model))
            self.model_combo.setCurrentIndex(self.model_combo.findData(str(model)))
        form.addRow("Model", self.model_combo)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a folder with one subfolder per label")
        form.addRow("Labelled images", self._with_browse(self.folder_edit, self._browse_folder))
        self.labels_edit = QLineEdit()
        self.labels_edit.setPlaceholderText("optional: a CSV with the columns path and label")
        form.addRow("Labels CSV", self._with_browse(self.labels_edit, self._browse_csv))
        self.mapping_edit = QLineEdit()
        self.mapping_edit.setPlaceholderText("e.g. bacterial=pneumonia, viral=pneumonia")
        form.addRow("Label mapping", self.mapping_edit)
        self.sample_spin = QSpinBox()
        self.sample_spin.setRange(0, 1_000_000)
        self.sample_spin.setSpecialValueText("all images")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 1_000_000)
        row = QHBoxLayout()
        row.addWidget(self.sample_spin)
        row.addWidget(QLabel("seed"))
        row.addWidget(self.seed_spin)
        form.addRow("Seeded subset", row)
        self.hide_names = QCheckBox("Name images CLASS/image-N (file names identify patients)")
        form.addRow("", self.hide_names)
        self.adopt = QCheckBox("Adopt a site profile (fitted on half the images)")
        self.indeterminate_spin = _probability_spin(0.5)
        self.sensitivity_spin = _probability_spin(0.9)
        row = QHBoxLayout()
        row.addWidget(self.adopt)
        row.addWidget(QLabel("indeterminate below"))
        row.addWidget(self.indeterminate_spin)
        row.addWidget(QLabel("sensitivity"))
        row.addWidget(self.sensitivity_spin)
        self.remove_button = QPushButton("Remove profile")
        self.remove_button.setToolTip("Remove the chosen model's site profile")
        self.remove_button.clicked.connect(self.remove_profile)
        row.addWidget(self.remove_button)
        form.addRow("Site profile", row)
        self.model_combo.currentIndexChanged.connect(self._update_profile_state)
        self._update_profile_state()
        return form

    def _with_browse(self, edit: QLineEdit, browse) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(browse)
        row.addWidget(button)
        return row

    def _build_run(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.run_button = QPushButton("Validate")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.progress_bar = QProgressBar()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.save_button = QPushButton("Save report (JSON and PDF)…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._ask_save)
        for widget in (self.run_button, self.stop_button, self.progress_bar, self.save_button):
            row.addWidget(widget)
        return row

    def _build_results(self) -> QScrollArea:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.addWidget(self.status_label)
        self.summary_label = _text_label()
        layout.addWidget(self.summary_label)
        self.class_table = QTableWidget()
        self.class_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.class_table.setMinimumHeight(130)
        layout.addWidget(self.class_table)
        self.worse_label = _text_label()
        layout.addWidget(self.worse_label)
        self.profile_label = _text_label()
        layout.addWidget(self.profile_label)
        self.profile_table = QTableWidget()
        self.profile_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.profile_table.setMinimumHeight(100)
        self.profile_table.hide()
        layout.addWidget(self.profile_table)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(box)
        return scroll

    # -- running --------------------------------------------------------------------------
    def request(self) -> ValidationRequest:
        """What the form asks for; XRayDeskError (a sentence) when something is missing."""
        from xraydesk.validate.labels import parse_mapping

        card = self.model_combo.currentData()
        folder = self.folder_edit.text().strip()
        if not card:
            raise XRayDeskError("No model is installed to validate.")
        if not folder:
            raise XRayDeskError("Choose the folder of labelled images first.")
        items = [m.strip() for m in self.mapping_edit.text().split(",") if m.strip()]
        labels = self.labels_edit.text().strip()
        return ValidationRequest(
            card_path=Path(card),
            folder=Path(folder),
            labels_csv=Path(labels) if labels else None,
            mapping=parse_mapping(items),
            sample=self.sample_spin.value() or None,
            seed=self.seed_spin.value(),
            hide_names=self.hide_names.isChecked(),
            device=self.device,
            adopt_profile=self.adopt.isChecked(),
            indeterminate_below=self.indeterminate_spin.value(),
            sensitivity=self.sensitivity_spin.value(),
        )

    @Slot()
    def start(self) -> bool:
        """Start a run in a worker thread; False (and the reason shown) when it cannot."""
        if self.thread is not None and self.thread.isRunning():
            return False
        try:
            request = self.request()
        except XRayDeskError as exc:
            self.status_label.setText(str(exc))
            return False
        self._running = request
        job = ValidateJob(request)
        job.progress.connect(self._on_progress)
        job.succeeded.connect(self._on_succeeded)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_failed)
        job.done.connect(self._on_done)
        self.thread = JobThread(job, self)
        self.outcome = None
        self.save_button.setEnabled(False)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)
        self.status_label.setText("Classifying the labelled images…")
        self.thread.start()
        return True

    @Slot()
    def stop(self) -> None:
        if self.thread is not None:
            self.thread.job.cancel()

    @Slot(object)
    def _on_progress(self, progress) -> None:
        if progress.total:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(progress.done)
        self.status_label.setText(f"Classified {progress.done} of {progress.total or '?'} images")

    @Slot(object)
    def _on_succeeded(self, outcome: ValidationOutcome) -> None:
        self.show_outcome(outcome)
        section = outcome.report.get("site_profile")
        if section:
            from xraydesk.classifier.cache import shared_cache

            shared_cache().refresh_profiles()  # loaded models use the new profile at once
            self.profile_adopted.emit(str(self._running.card_path))
            self._update_profile_state()
        self.finished_run.emit(outcome)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status_label.setText(message)
        self.finished_run.emit(None)

    @Slot()
    def _on_done(self) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)

    # -- the site profile -----------------------------------------------------------------
    def _card(self):
        from xraydesk.model.card import ModelCard

        path = self.model_combo.currentData()
        return ModelCard.read(path) if path else None

    @Slot()
    def _update_profile_state(self) -> None:
        """Enable "Remove profile" when the chosen model has one; say what it is."""
        from xraydesk.model.site_profile import load_state

        try:
            card = self._card()
        except XRayDeskError:
            card = None
        state = load_state(card) if card is not None else None
        has = state is not None and (state.profile is not None or state.refused is not None)
        self.remove_button.setEnabled(has)
        if state is not None and state.profile is not None:
            self.remove_button.setToolTip(f"Remove the site profile: {state.profile.line}")
        elif state is not None and state.refused:
            self.remove_button.setToolTip(f"Remove the refused site profile: {state.refused}")

    @Slot()
    def remove_profile(self) -> None:
        """Remove the chosen model's profile; loaded models stop using it at once."""
        from xraydesk.classifier.cache import shared_cache
        from xraydesk.model.site_profile import remove_profile

        try:
            card = self._card()
            removed = remove_profile(card) if card is not None else None
        except XRayDeskError as exc:
            self.status_label.setText(str(exc))
            return
        shared_cache().refresh_profiles()
        if removed is not None:
            self.status_label.setText(f"Removed the site profile of {card.label}.")
            self.profile_adopted.emit(str(self.model_combo.currentData()))
        self._update_profile_state()

    # -- results --------------------------------------------------------------------------
    def show_outcome(self, outcome: ValidationOutcome) -> None:
        """The report's figures in the window."""
        self.outcome = outcome
        report = outcome.report
        self.status_label.setText(
            f"{report['model']['label']} on {report['site']['folder']}: "
            f"{report['site']['images_validated']} images validated."
        )
        self.summary_label.setText(view.summary_text(report))
        view.fill_table(self.class_table, view.CLASS_COLUMNS, view.class_rows(report))
        self.worse_label.setText(view.worse_text(report))
        section = report.get("site_profile")
        self.profile_label.setText(view.profile_text(section) if section else "")
        self.profile_table.setVisible(bool(section))
        if section:
            view.fill_table(self.profile_table, view.PROFILE_COLUMNS, view.profile_rows(section))
        self.save_button.setEnabled(True)

    def save(self, base: Path, pdf: bool = True) -> list[Path]:
        """Write BASE.json (and BASE.pdf); the paths written."""
        if self.outcome is None:
            raise XRayDeskError("Validate first: there is no report to save.")
        written = save_report(self.outcome, base, pdf)
        self.status_label.setText("Report saved: " + ", ".join(str(p) for p in written))
        return written

    @Slot()
    def _ask_save(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Save the validation report", "validation.json", "Report (*.json)"
        )
        if not name:
            return
        base = Path(name)
        base = base.with_suffix("") if base.suffix.lower() in (".json", ".pdf") else base
        try:
            self.save(base)
        except (XRayDeskError, OSError) as exc:
            self.status_label.setText(f"Could not save the report: {exc}")

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of labelled images")
        if folder:
            self.folder_edit.setText(folder)

    def _browse_csv(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Labels CSV", "", "CSV (*.csv)")
        if name:
            self.labels_edit.setText(name)

    def closeEvent(self, event) -> None:
        if self.thread is not None and self.thread.isRunning():
            self.thread.stop()
        super().closeEvent(event)


def _label(card_path: Path) -> str:
    from xraydesk.model.card import ModelCard

    try:
        return ModelCard.read(card_path).label
    except XRayDeskError:
        return card_path.stem


def _probability_spin(value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 1.0)
    spin.setSingleStep(0.05)
    spin.setDecimals(2)
    spin.setValue(value)
    return spin


def _text_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
