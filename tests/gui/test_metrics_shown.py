"""Issue 19 #7 (GUI): every metric shown with n and a 95 % interval; a warning below the
minimum test size, in the model manager and on the wizard's results page."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from xraydesk import paths
from xraydesk.gui.models_dialog import ModelsDialog
from xraydesk.gui.wizard.results_page import ResultsPage
from xraydesk.model.card import ModelCard
from xraydesk.trainer.metrics import MIN_TEST_PER_CLASS, evaluate
from xraydesk.trainer.training import TrainResult

CLASS_IDS = ("normal", "pneumonia", "covid19")


def _test_metrics(per_class: int, seed: int) -> dict:
    """Real metrics of noisy logits that mostly favour the true class."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), per_class)
    logits = rng.normal(size=(len(y), 3))
    logits[np.arange(len(y)), y] += 1.5
    test = evaluate(logits, y, CLASS_IDS, curves=True)
    test["uncalibrated"] = evaluate(logits, y, CLASS_IDS)
    return test


def _user_card(test_model_path: Path, name: str, test: dict) -> ModelCard:
    card = ModelCard.read(test_model_path)
    card.name, card.weights_file = name, f"{name}.safetensors"
    card.metrics = {"test": {k: v for k, v in test.items() if k != "roc"}}
    shutil.copy(
        test_model_path.with_suffix(".safetensors"), paths.user_models_dir() / card.weights_file
    )
    out = paths.user_models_dir() / f"{name}.json"
    card.write(out)
    return ModelCard.read(out)


@pytest.fixture(autouse=True)
def no_bundled(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: tmp_path / "none")


def test_model_manager_shows_n_and_interval_and_flags_small_tests(qtbot, test_model_path):
    _user_card(test_model_path, "small-test", _test_metrics(4, 0))  # 12 images
    _user_card(test_model_path, "large-test", _test_metrics(100, 1))  # 300 images
    dialog = ModelsDialog()
    qtbot.addWidget(dialog)
    rows = {
        dialog.table.item(r, 0).text(): (dialog.table.item(r, 5), dialog.table.item(r, 6))
        for r in range(dialog.table.rowCount())
    }
    small_acc, small_n = rows["small-test"]
    large_acc, large_n = rows["large-test"]
    assert "95 % CI" in small_acc.text() and "95 % CI" in large_acc.text()
    assert small_n.text().endswith("12") and large_n.text() == "300"
    assert small_acc.text().startswith("⚠") and not large_acc.text().startswith("⚠")
    assert str(MIN_TEST_PER_CLASS) in small_acc.toolTip()
    assert not dialog.small_warning.isHidden()
    assert "1 model" in dialog.small_warning.text()


def test_wizard_results_show_n_intervals_and_the_small_test_warning(qtbot, test_model_path):
    test = _test_metrics(4, 2)
    card = _user_card(test_model_path, "quick", test)
    page = ResultsPage()
    qtbot.addWidget(page)
    result = TrainResult(
        card_path=card.path,
        card=card,
        test=test,
        validation={},
        history=[],
        seconds=1.0,
        device="cpu",
        base_model=None,
    )
    page.show_result(result)
    assert "n = 12" in page.summary.text() and "95 % CI" in page.summary.text()
    assert not page.small_warning.isHidden()
    assert f"fewer than {MIN_TEST_PER_CLASS}" in page.small_warning.text()
    headers = [page.table.horizontalHeaderItem(c).text() for c in range(page.table.columnCount())]
    assert "Test images (n)" in headers
    for row in range(page.table.rowCount()):
        assert page.table.item(row, 1).text() == "4"
        assert "95 % CI" in page.table.item(row, 3).text()  # recall
    assert "95 % CI" in page.overall.text() and "n = 12" in page.overall.text()
    page.show_result(
        TrainResult(
            card_path=card.path,
            card=card,
            test=_test_metrics(40, 3),
            validation={},
            history=[],
            seconds=1.0,
            device="cpu",
            base_model=None,
        )
    )
    assert page.small_warning.isHidden()
