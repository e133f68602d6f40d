"""The fine-tuning wizard: data, settings, training, results.

A front door over ``xraydesk.trainer`` (the same engine as ``xraydesk train``). It is
modeless: the viewer stays usable while a model trains. "Use this model" emits
``model_ready(card_path)``; the main window connects it to make the model active.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMessageBox, QWidget, QWizard

from xraydesk.gui.jobs import CheckOutcome
from xraydesk.gui.wizard.data_page import DataPage
from xraydesk.gui.wizard.results_page import ResultsPage
from xraydesk.gui.wizard.setup_page import SetupPage
from xraydesk.gui.wizard.training_page import TrainingPage
from xraydesk.trainer import TrainResult

DATA, SETUP, TRAINING, RESULTS = range(4)


class TrainingWizard(QWizard):
    model_ready = Signal(Path)  # card path of the model the user chose to use

    def __init__(self, parent: QWidget | None = None, data: list[str | Path] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("training-wizard")
        self.setWindowTitle("Train a model")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, False)
        self.resize(860, 680)
        self.data_page = DataPage()
        self.setup_page = SetupPage()
        self.training_page = TrainingPage()
        self.results_page = ResultsPage()
        for page_id, page in enumerate(
            (self.data_page, self.setup_page, self.training_page, self.results_page)
        ):
            self.setPage(page_id, page)
        self.data_page.checked.connect(self._data_checked)
        self.training_page.finished.connect(self._trained)
        self.results_page.use_model.connect(self.use_model)
        self.currentIdChanged.connect(self._entered)
        for path in data or []:
            self.data_page.add_source(path)

    @property
    def result(self) -> TrainResult | None:
        return self.training_page.result

    @Slot(object)
    def _data_checked(self, outcome: CheckOutcome) -> None:
        self.setup_page.set_counts(outcome.report.counts)

    def _entered(self, page_id: int) -> None:
        page = self.training_page
        if page_id != TRAINING or page.is_running() or page.result is not None:
            return
        config = self.setup_page.config(self.data_page.source_paths())
        outcome = self.data_page.outcome
        config.classes = outcome.report.classes if outcome is not None else None  # as shown
        page.config = config
        page.start()

    @Slot(object)
    def _trained(self, result: TrainResult) -> None:
        self.results_page.show_result(result)

    def use_model(self) -> None:
        if self.result is not None:
            self.model_ready.emit(self.result.card_path)
            self.accept()

    # -- closing --------------------------------------------------------------------------------
    def reject(self) -> None:
        if self.training_page.is_running():
            answer = QMessageBox.question(
                self,
                "Stop training?",
                "Training is still running. Stop it? Its checkpoint is kept, so it can be "
                "resumed later with the same model name.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._stop_workers()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._stop_workers()
        super().closeEvent(event)

    def _stop_workers(self) -> None:
        self.data_page.stop()
        self.training_page.stop()
