"""The fine-tuning wizard, walked page by page with a tiny real training run."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWizard

from tests.training_data import kermany_rows, write_manifest
from xraydesk import paths
from xraydesk.gui.models_dialog import ModelsDialog
from xraydesk.gui.wizard import TrainingWizard
from xraydesk.gui.wizard.wizard import DATA, RESULTS, SETUP, TRAINING
from xraydesk.model.card import ModelCard
from xraydesk.trainer.checkpoint import RunDir

WAIT_MS = 180_000


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/trainer/test_train_engine.py: shared cores, tiny batches
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_bundled(monkeypatch, tmp_path):
    empty = tmp_path / "no-bundled"
    empty.mkdir()
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: empty)


@pytest.fixture
def manifest(shared_data: Path, tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "kermany-subset.csv", kermany_rows(shared_data, 12))


@pytest.fixture
def wizard(qtbot, manifest):
    wiz = TrainingWizard(data=[manifest])
    qtbot.addWidget(wiz)
    wiz.show()
    yield wiz
    wiz.training_page.stop()


def _set_up(wiz: TrainingWizard, name: str, epochs: int) -> None:
    setup = wiz.setup_page
    setup.name.setText(name)
    setup.base.setCurrentIndex(setup.base.findData("scratch"))
    setup.full.setChecked(True)
    setup.epochs.setValue(epochs)
    setup.size.setValue(64)
    setup.batch.setValue(8)
    setup.device.setCurrentIndex(setup.device.findData("cpu"))


def _to_setup(qtbot, wizard: TrainingWizard) -> None:
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=WAIT_MS)
    wizard.next()
    assert wizard.currentId() == SETUP


def test_data_page_checks_in_a_worker_with_counts_and_thumbnails(qtbot, wizard):
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=WAIT_MS)
    counts = wizard.data_page.counts
    assert [counts.item(r, 1).text() for r in range(counts.rowCount())] == ["12", "12", "12"]
    thumbs = [
        w for w in wizard.data_page.findChildren(QLabel) if w.objectName().startswith("thumb-")
    ]
    assert len(thumbs) == 12 and not thumbs[0].pixmap().isNull()
    assert "36 usable images in 3 classes" in wizard.data_page.status.text()
    wizard.next()
    assert wizard.currentId() == SETUP


def test_setup_page_refuses_a_taken_name_and_estimates(qtbot, wizard, test_model_path):
    _to_setup(qtbot, wizard)
    for f in test_model_path.parent.iterdir():
        shutil.copy(f, paths.user_models_dir() / f.name)
    setup = wizard.setup_page
    setup.name.setText("test-3class")
    assert not setup.isComplete() and "already in your library" in setup.name_error.text()
    _set_up(wizard, "wiz-model", epochs=1)
    assert setup.isComplete()
    assert setup.estimate.text().startswith("About ")
    assert wizard.button(QWizard.WizardButton.CommitButton).text() == "Train"
    wizard.next()
    assert wizard.currentId() == TRAINING
    page = wizard.training_page  # training started: stop it (closing would ask the user)
    assert page.stop(WAIT_MS)
    qtbot.waitUntil(lambda: not page.is_running(), timeout=WAIT_MS)


def test_training_results_and_use_the_model(qtbot, wizard):
    _to_setup(qtbot, wizard)
    _set_up(wizard, "wiz-model", epochs=1)
    wizard.next()
    # training in a worker, with live curves
    page = wizard.training_page
    qtbot.waitUntil(page.isComplete, timeout=WAIT_MS)
    assert page.loss_chart.series("training") and len(page.loss_chart.series("validation")) == 1
    assert page.acc_chart.series("validation")[0][0] == 1
    assert "Finished" in page.status.text()
    wizard.next()
    assert wizard.currentId() == RESULTS

    # results, then "Use this model"
    results = wizard.results_page
    result = wizard.result
    assert results.table.rowCount() == 3
    assert sum(map(sum, results.confusion.counts())) == result.test["n"]
    assert sorted(results.roc.series_names()) == sorted(result.card.display_names.values())
    with qtbot.waitSignal(wizard.model_ready, timeout=5_000) as blocker:
        qtbot.mouseClick(results.use_button, Qt.MouseButton.LeftButton)
    card_path = blocker.args[0]
    assert card_path == paths.user_models_dir() / "wiz-model.json"
    assert ModelCard.read(card_path).training["mode"] == "full"
    assert not wizard.isVisible()


def test_cancel_then_resume_from_the_training_page(qtbot, wizard):
    _to_setup(qtbot, wizard)
    _set_up(wizard, "wiz-cancel", epochs=1)
    page = wizard.training_page
    wizard.next()  # training starts (checking and building the network come first)
    job = page._runner.job

    def cancel_at_first_step(p) -> None:  # runs in the worker: deterministic, mid-epoch
        if p.phase == "training" and p.step == 1:
            job.cancel()

    job.progress.connect(cancel_at_first_step, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: not page.is_running(), timeout=WAIT_MS)
    assert "cancelled" in page.status.text()
    assert page.resume_button.isVisible() and not page.cancel_button.isVisible()
    assert not page.finish_button.isVisible()  # no finished epoch yet
    assert RunDir("wiz-cancel").exists() and not page.isComplete()

    qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(page.isComplete, timeout=WAIT_MS)
    assert len(wizard.result.history) == 1
    assert not RunDir("wiz-cancel").exists()


def test_data_page_refuses_a_single_class(qtbot, shared_data, tmp_path):
    one = write_manifest(tmp_path / "one.csv", kermany_rows(shared_data, 12, ("normal",)))
    wiz = TrainingWizard(data=[one])
    qtbot.addWidget(wiz)
    wiz.show()
    qtbot.waitUntil(
        lambda: not wiz.data_page.is_checking() and wiz.data_page.outcome is not None,
        timeout=WAIT_MS,
    )
    assert not wiz.data_page.isComplete()
    assert "Only one class has images" in wiz.data_page.status.text()
    assert wiz.currentId() == DATA


@pytest.fixture
def models_dialog(qtbot, test_model_path, tmp_path, monkeypatch):
    """The model manager over a bundled chest-3class and a user copy of the test model."""
    from tests.model_factory import make_test_model

    bundled = tmp_path / "bundled"
    make_test_model(bundled, name="chest-3class")
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: bundled)
    for f in test_model_path.parent.iterdir():
        shutil.copy(f, paths.user_models_dir() / f.name)
    dialog = ModelsDialog()
    qtbot.addWidget(dialog)
    return dialog


def test_models_dialog_lists_and_keeps_bundled_models_read_only(models_dialog, tmp_path):
    dialog = models_dialog
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert names == ["chest-3class", "test-3class"]
    dialog.select("chest-3class")  # bundled: read-only
    assert dialog.use_button.isEnabled() and not dialog.rename_button.isEnabled()
    assert not dialog.delete_selected(confirmed=True)
    assert (tmp_path / "bundled" / "chest-3class.json").is_file()


def test_models_dialog_renames_uses_and_deletes(qtbot, models_dialog):
    dialog = models_dialog
    library = paths.user_models_dir()
    dialog.select("test-3class")
    assert dialog.rename_button.isEnabled()
    with qtbot.waitSignal(dialog.models_changed):
        assert dialog.rename_selected("mine")
    assert (library / "mine.json").is_file() and dialog.selected().name == "mine"
    assert not dialog.rename_selected("chest-3class")  # taken by the bundled model
    assert "already exists" in dialog.last_error
    dialog.error_box.close()
    with qtbot.waitSignal(dialog.model_chosen) as chosen:
        dialog.use_selected()
    assert chosen.args[0] == library / "mine.json"
    with qtbot.waitSignal(dialog.models_changed):
        assert dialog.delete_selected(confirmed=True)
    assert not (library / "mine.json").exists() and dialog.table.rowCount() == 1
