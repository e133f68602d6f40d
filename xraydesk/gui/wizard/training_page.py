"""Wizard page 3: training, live.

Loss and accuracy curves (training as it goes, validation once per epoch), epoch,
images per second and time left. Training runs in a worker thread; the rest of the app
stays usable. Cancel stops within a batch and keeps the checkpoint: the run can then be
resumed, or (full mode) finished with its best epoch so far.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from xraydesk.durations import format_duration
from xraydesk.gui.jobs import JobThread, TrainJob
from xraydesk.gui.wizard.charts import LineChart
from xraydesk.trainer import TrainConfig, TrainProgress, TrainResult
from xraydesk.trainer.checkpoint import BEST, RunDir
from xraydesk.trainer.config import TrainingMode
from xraydesk.trainer.progress import TrainingStage

TRAIN_COLOR, VAL_COLOR = "#0072B2", "#E69F00"


class TrainingPage(QWizardPage):
    finished = Signal(object)  # TrainResult

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Training")
        self.setSubTitle("You can keep using XRayDesk while the model trains.")
        self.config: TrainConfig | None = None
        self.result: TrainResult | None = None
        self._runner: JobThread | None = None
        self._running = False

        self.status = QLabel("Waiting to start.")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.epoch_label = QLabel("Epoch –")
        self.speed_label = QLabel("– images/s")
        self.eta_label = QLabel("Time left –")
        facts = QHBoxLayout()
        for w in (self.epoch_label, self.speed_label, self.eta_label):
            facts.addWidget(w)
        facts.addStretch(1)
        self.loss_chart = LineChart("Loss", "epoch")
        self.acc_chart = LineChart("Accuracy", "epoch", y_range=(0.0, 1.0))
        charts = QHBoxLayout()
        charts.addWidget(self.loss_chart)
        charts.addWidget(self.acc_chart)
        self.quick_note = QLabel(
            "Quick mode computes image features once, then fits the last layer: there are "
            "no epochs to plot."
        )
        self.quick_note.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel training")
        self.resume_button = QPushButton("Resume")
        self.finish_button = QPushButton("Finish with the best epoch")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.finish_button.clicked.connect(lambda: self.start(finish_early=True))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.resume_button, self.finish_button, self.cancel_button):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.bar)
        layout.addLayout(facts)
        layout.addLayout(charts, 1)
        layout.addWidget(self.quick_note)
        layout.addLayout(buttons)
        self._show_buttons(running=False, resumable=False)

    # -- running ----------------------------------------------------------------------------------
    def start(self, resume: bool = False, finish_early: bool = False) -> None:
        if self.config is None or self._running:
            return
        full = self.config.mode == TrainingMode.FULL
        self.loss_chart.setVisible(full)
        self.acc_chart.setVisible(full)
        self.quick_note.setVisible(not full)
        if not (resume or finish_early):
            self.loss_chart.clear()
            self.acc_chart.clear()
        job = TrainJob(self.config, resume=resume, finish_early=finish_early)
        job.progress.connect(self._on_progress)
        job.succeeded.connect(self._on_succeeded)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        job.done.connect(self._on_done)
        if self._runner is not None:
            self._runner.wait()
            self._runner.deleteLater()
        self._runner = JobThread(job, self)
        self._running = True
        self.status.setText("Starting…")
        self._show_buttons(running=True, resumable=False)
        self._runner.start()

    def is_running(self) -> bool:
        return self._running

    def cancel(self) -> None:
        if self._runner is not None and self._running:
            self._runner.job.cancel()
            self.status.setText("Stopping after this batch…")
            self.cancel_button.setEnabled(False)

    def stop(self, wait_ms: int = 60_000) -> bool:
        """Cancel and wait (the wizard is closing)."""
        return self._runner.stop(wait_ms) if self._runner is not None else True

    # -- progress ---------------------------------------------------------------------------------
    @Slot(object)
    def _on_progress(self, p: TrainProgress) -> None:
        if p.message:
            self.status.setText(p.message)
        if p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(p.done)
        else:
            self.bar.setRange(0, 0)
        if p.epochs:
            self.epoch_label.setText(f"Epoch {p.epoch} of {p.epochs}")
        if p.rate:
            self.speed_label.setText(f"{p.rate:.1f} images/s")
        if p.eta is not None:
            self.eta_label.setText(f"Time left {format_duration(p.eta, rounded=True)}")
        if (
            p.phase == TrainingStage.TRAINING
            and p.steps
            and p.loss is not None
            and p.record is None
        ):
            x = (p.epoch - 1) + p.step / p.steps
            self.loss_chart.add_point("training", x, p.loss, TRAIN_COLOR)
            self.acc_chart.add_point("training", x, p.acc or 0.0, TRAIN_COLOR)
        if p.record is not None:
            r = p.record
            self.loss_chart.add_point("validation", r["epoch"], r["val_loss"], VAL_COLOR)
            self.acc_chart.add_point("validation", r["epoch"], r["val_acc"], VAL_COLOR)

    @Slot(object)
    def _on_succeeded(self, result: TrainResult) -> None:
        self.result = result
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.eta_label.setText("Done")
        self.status.setText(
            f"Finished in {format_duration(result.seconds, rounded=True)}: test accuracy "
            f"{result.test['accuracy']:.1%}. Saved as {result.card.label}."
        )
        self.finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Training stopped: {message}")
        self._show_buttons(running=False, resumable=self._resumable())

    @Slot(str)
    def _on_cancelled(self, message: str) -> None:
        self.status.setText(message)
        self._show_buttons(running=False, resumable=self._resumable())

    @Slot()
    def _on_done(self) -> None:
        self._running = False
        if self.result is not None:
            self._show_buttons(running=False, resumable=False)
            self.cancel_button.setVisible(False)
        self.completeChanged.emit()

    def _resumable(self) -> bool:
        return self.config is not None and RunDir(self.config.name).exists()

    def _show_buttons(self, running: bool, resumable: bool) -> None:
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.resume_button.setVisible(resumable)
        can_finish = (
            resumable
            and self.config is not None
            and self.config.mode == TrainingMode.FULL
            and RunDir(self.config.name).has(BEST)
        )
        self.finish_button.setVisible(bool(can_finish))

    def isComplete(self) -> bool:
        return self.result is not None and not self._running
