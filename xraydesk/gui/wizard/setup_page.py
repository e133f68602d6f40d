"""Wizard page 2: how to train, with defaults that work and an estimate of the time."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QWidget,
    QWizard,
    QWizardPage,
)

from xraydesk.durations import format_duration
from xraydesk.errors import XRayDeskError
from xraydesk.model.card import ModelCard
from xraydesk.model.device import select_device
from xraydesk.model.library import list_models
from xraydesk.optional import FULL_BUILD_HINT, has_torch
from xraydesk.trainer import TrainConfig, estimate_seconds
from xraydesk.trainer.config import LR_FINE_TUNE, LR_SCRATCH, SCRATCH, TrainingMode
from xraydesk.trainer.split import DEFAULT_FRACTIONS
from xraydesk.trainer.training import default_base, refuse_taken_name

DEVICES = (("Automatic", "auto"), ("CPU", "cpu"), ("NVIDIA GPU (CUDA)", "cuda"))


class SetupPage(QWizardPage):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Settings")
        self.setSubTitle(
            "Quick mode learns only the last layer (minutes). Full mode trains every layer "
            "(hours on a CPU, minutes on a GPU) and usually does better. Nothing leaves "
            "this computer."
        )
        self.setCommitPage(True)  # once training starts there is no going back
        self.setButtonText(QWizard.WizardButton.CommitButton, "Train")
        self.counts: dict[str, int] = {}

        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. my-hospital-pneumonia")
        self.name_error = QLabel()
        self.name_error.setStyleSheet("color: #D55E00")
        self.name_error.setWordWrap(True)
        self.base = QComboBox()
        self.quick = QRadioButton("Quick (frozen backbone, logistic-regression head)")
        self.full = QRadioButton("Full (all layers)")
        self.quick.setChecked(True)
        if not has_torch():  # the light build: quick mode from an installed model only
            self.full.setEnabled(False)
            self.full.setToolTip(f"Full fine-tuning needs PyTorch: {FULL_BUILD_HINT}.")
        modes = QButtonGroup(self)
        modes.addButton(self.quick)
        modes.addButton(self.full)
        mode_box = QHBoxLayout()
        mode_box.addWidget(self.quick)
        mode_box.addWidget(self.full)
        mode_box.addStretch(1)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(10)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 0.1)
        self.lr.setSingleStep(1e-4)
        self.batch = QSpinBox()
        self.batch.setRange(2, 512)
        self.batch.setValue(32)
        self.size = QSpinBox()
        self.size.setRange(64, 1024)
        self.size.setSingleStep(32)
        self.size.setSuffix(" px")
        self.device = QComboBox()
        for label, value in DEVICES:
            self.device.addItem(label, value)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)

        form = QFormLayout(self)
        form.addRow("Model name:", self.name)
        form.addRow("", self.name_error)
        form.addRow("Start from:", self.base)
        form.addRow("Mode:", mode_box)
        form.addRow("Epochs:", self.epochs)
        form.addRow("Learning rate:", self.lr)
        form.addRow("Batch size:", self.batch)
        form.addRow("Image size:", self.size)
        form.addRow("Device:", self.device)
        form.addRow("Estimate:", self.estimate)

        self.name.textChanged.connect(self._validate_name)
        self.base.currentIndexChanged.connect(self._base_changed)
        for signal in (
            self.quick.toggled,
            self.epochs.valueChanged,
            self.size.valueChanged,
            self.device.currentIndexChanged,
        ):
            signal.connect(self._update)
        self._populate_bases()

    # -- defaults -------------------------------------------------------------------------------
    def _populate_bases(self) -> None:
        self.base.blockSignals(True)
        self.base.clear()
        if has_torch():  # a random backbone is made with torch: not in the light build
            self.base.addItem("Random weights (from scratch)", SCRATCH)
        for card in list_models():
            self.base.addItem(f"{card.label} ({card.source})", str(card.path))
        default = default_base()
        index = self.base.findData(str(default.path)) if default is not None else 0
        self.base.setCurrentIndex(max(index, 0))
        self.base.blockSignals(False)
        self._base_changed()

    def base_card(self) -> ModelCard | None:
        data = self.base.currentData()
        if data in (None, SCRATCH):
            return None
        try:
            return ModelCard.read(data)
        except XRayDeskError:
            return None

    def _base_changed(self) -> None:
        card = self.base_card()
        self.size.setValue(card.preprocessing.size if card else 224)
        self.lr.setValue(LR_FINE_TUNE if card else LR_SCRATCH)
        self._update()

    def set_counts(self, counts: dict[str, int]) -> None:
        """Images per class from the data page, for the estimate."""
        self.counts = dict(counts)
        self._update()

    # -- validation and estimate ----------------------------------------------------------------
    def _validate_name(self) -> None:
        text = self.name.text().strip()
        message = ""
        if text:
            try:
                refuse_taken_name(text)
            except XRayDeskError as exc:
                message = str(exc)
        self.name_error.setText(message)
        self.name_error.setVisible(bool(message))
        self.completeChanged.emit()

    def _update(self) -> None:
        full = self.full.isChecked()
        self.epochs.setEnabled(full)
        self.lr.setEnabled(full)
        total = sum(self.counts.values())
        split = {
            name: round(total * fraction)
            for name, fraction in zip(("train", "val", "test"), DEFAULT_FRACTIONS, strict=True)
        }
        try:
            choice = select_device(self.device.currentData())
        except XRayDeskError as exc:
            self.estimate.setText(str(exc))
            return
        seconds = estimate_seconds(
            "full" if full else "quick", split, self.size.value(), self.epochs.value(), choice
        )
        self.estimate.setText(
            f"About {format_duration(seconds, rounded=True)} on {choice.label} for {total} images "
            "(a rough guess; the training page shows the real time left)."
        )

    def isComplete(self) -> bool:
        return bool(self.name.text().strip()) and not self.name_error.text()

    def config(self, data: list[str]) -> TrainConfig:
        return TrainConfig(
            data=list(data),
            name=self.name.text().strip(),
            mode=TrainingMode.FULL if self.full.isChecked() else TrainingMode.QUICK,
            epochs=self.epochs.value(),
            lr=self.lr.value() if self.full.isChecked() else None,
            batch=self.batch.value(),
            size=self.size.value(),
            base=self.base.currentData() or SCRATCH,
            device=self.device.currentData(),
        )
