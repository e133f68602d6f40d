"""Opening images: menu, drop, folder navigation, bad files, stale results, models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog

from tests.gui.conftest import WAIT_MS, open_and_wait, wait_for
from xraydesk import paths
from xraydesk.model.card import ModelCard

pytestmark = pytest.mark.data


def _open_via_menu(qtbot, window, monkeypatch, path: Path) -> None:
    """File > Open exactly as a user triggers it, with the dialog answering ``path``."""
    asked: list[str] = []

    def fake_dialog(parent, caption, folder, filters):
        asked.append(filters)
        return str(path), "All files (*)"

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(fake_dialog))
    wait_for(qtbot, window, "overlay_shown", window.actions_by_id["open"].trigger)
    for name in ("PNG", "JPEG", "TIFF", "DICOM (*.dcm *.dicom)", "All files (*)"):
        assert name in asked[0]


@pytest.mark.parametrize(
    "sample", ["dicom/siim-cr-jpeg-baseline.dcm", "fullres/nih-00000001_000.png"]
)
def test_open_from_the_menu_shows_probabilities_summing_to_one(
    qtbot, main_window, monkeypatch, samples_dir, test_classifier, sample
):
    path = samples_dir / sample
    _open_via_menu(qtbot, main_window, monkeypatch, path)
    shown = main_window.results.shown_probabilities()
    assert set(shown) == {"normal", "pneumonia", "covid19"}
    assert sum(shown.values()) == pytest.approx(1.0, abs=1e-9)
    # the numbers are the engine's for this file, not something of the GUI's own
    from xraydesk.imaging import load_xray

    expected = test_classifier.predict(load_xray(path)).probabilities
    for class_id, probability in expected.items():
        assert shown[class_id] == pytest.approx(probability, abs=0.02)  # bf16 vs fp32 runs
    prediction = main_window.current_prediction
    assert main_window.results.bar(prediction.predicted).predicted
    assert "test-3class 0.0-test" in main_window.results.details_label.text()
    assert "CPU" in main_window.results.details_label.text()
    assert main_window.view.has_heat_layer
    assert main_window.windowTitle().startswith(path.name)
    assert main_window.settings.recent_files[0] == str(path)


def test_dicom_metadata_shown_and_patient_hidden(qtbot, main_window, dicom_path):
    open_and_wait(qtbot, main_window, dicom_path, until="image_shown")
    fields = main_window.metadata.fields
    assert fields["Modality"].text() == "CR"
    assert fields["View"].text() == "PA"
    assert fields["Body part"].text() == "CHEST"
    assert fields["Pixel spacing"].text() == "0.168 × 0.168 mm"
    assert fields["Window (file)"].text() == "W 255  L 127.5"
    assert not main_window.metadata.patient_revealed


def test_drop_opens_the_file(qtbot, main_window, png_path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png_path))])
    enter = QDragEnterEvent(
        QPointF(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(main_window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    wait_for(qtbot, main_window, "overlay_shown", lambda: QApplication.sendEvent(main_window, drop))
    assert main_window.current_xray.path == png_path


def test_drop_of_non_files_is_refused(main_window):
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(main_window, enter)
    assert not enter.isAccepted()


def test_bad_file_shows_a_message_and_the_window_survives(qtbot, main_window, tmp_path, png_path):
    bad = tmp_path / "x.png"
    bad.write_text("this is not an image\n")
    with qtbot.waitSignal(main_window.error_shown, timeout=WAIT_MS) as blocker:
        main_window.open_path(bad)
    message = blocker.args[0]
    assert "x.png" in message and "not an image" in message
    assert main_window.banner.text == message
    assert main_window.banner.isVisible()
    assert main_window.current_xray is None
    assert main_window.results.shown_probabilities() == {}
    # still fully usable
    open_and_wait(qtbot, main_window, png_path)
    assert not main_window.banner.isVisible()


def test_missing_file_and_empty_folder_name_the_path(qtbot, main_window, tmp_path):
    with qtbot.waitSignal(main_window.error_shown, timeout=WAIT_MS) as blocker:
        main_window.open_path(tmp_path / "gone.dcm")
    assert "gone.dcm" in blocker.args[0] and "not found" in blocker.args[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(main_window.error_shown, timeout=1000) as blocker:
        assert not main_window.open_path(empty)
    assert str(empty) in blocker.args[0]


def test_folder_opens_its_first_image_and_pages_through(qtbot, main_window, samples_dir):
    folder = samples_dir / "fullres"
    images = sorted(p for p in folder.iterdir() if p.suffix == ".png")
    open_and_wait(qtbot, main_window, folder, until="image_shown")
    assert main_window.current_xray.path == images[0]
    wait_for(qtbot, main_window, "image_shown", main_window.actions_by_id["next"].trigger)
    assert main_window.current_xray.path == images[1]
    wait_for(qtbot, main_window, "image_shown", main_window.actions_by_id["previous"].trigger)
    assert main_window.current_xray.path == images[0]
    # at the first image, "previous" says so and stays put
    main_window.actions_by_id["previous"].trigger()
    assert "first image" in main_window.statusBar().currentMessage()
    keys = {s.toString() for s in main_window.actions_by_id["next"].shortcuts()}
    assert {"PgDown", "Right"} <= keys


def test_a_newer_open_discards_the_older_result(qtbot, main_window, dicom_path, png_path):
    shown: list[Path] = []
    main_window.image_shown.connect(shown.append)
    predictions = []
    main_window.probabilities_shown.connect(predictions.append)

    def open_both() -> None:
        main_window.open_path(dicom_path)
        main_window.open_path(png_path)

    wait_for(qtbot, main_window, "overlay_shown", open_both)
    assert shown == [png_path]
    assert len(predictions) == 1
    assert main_window.current_xray.path == png_path


def test_no_model_installed_is_shown_and_images_still_open(
    qtbot, make_window, monkeypatch, tmp_path, png_path
):
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: tmp_path / "no-bundled-models")
    window = make_window(model=None)
    assert window.active_model_path is None
    assert window.results.no_model_label.isVisibleTo(window)
    assert "No model is installed" in window.results.no_model_label.text()
    assert not window.results.model_combo.isEnabled()
    open_and_wait(qtbot, window, png_path, until="image_shown")
    qtbot.waitUntil(lambda: not window.pipeline.busy, timeout=WAIT_MS)
    assert window.results.shown_probabilities() == {}
    assert "no model" in window.banner.text


def _copy_model(card_path: Path, name: str) -> Path:
    """Install a copy of the test model in the user library under another name."""
    target = paths.user_models_dir()
    model = ModelCard.read(card_path)  # written through the card, so its hash still holds
    shutil.copy(model.weights_path, target / f"{name}.safetensors")
    model.name, model.weights_file = name, f"{name}.safetensors"
    card = target / f"{name}.json"
    model.write(card)
    return card


def test_changing_the_model_reruns_the_image(qtbot, main_window, test_model_path, png_path):
    open_and_wait(qtbot, main_window, png_path)
    second = _copy_model(test_model_path, "second-model")
    main_window.refresh_models()
    combo = main_window.results.model_combo
    index = combo.findData(str(second))
    assert index >= 0, "the library model is listed"
    wait_for(qtbot, main_window, "overlay_shown", lambda: combo.setCurrentIndex(index))
    assert main_window.current_prediction.model == "second-model 0.0-test"
    assert main_window.active_model_path == second
    assert main_window.settings.model == str(second)


def test_set_active_model_by_name_and_bad_name(qtbot, main_window, test_model_path):
    second = _copy_model(test_model_path, "named-model")
    main_window.refresh_models()
    assert main_window.set_active_model("named-model")
    assert main_window.active_model_path == second
    assert not main_window.set_active_model("no-such-model")
    assert "no-such-model" in main_window.banner.text
    assert main_window.active_model_path == second


def test_heat_map_for_another_class(qtbot, main_window, png_path):
    open_and_wait(qtbot, main_window, png_path)
    predicted = main_window.current_prediction.predicted
    other = next(c for c in ("normal", "pneumonia", "covid19") if c != predicted)
    combo = main_window.results.class_combo
    assert combo.currentData() == predicted
    index = combo.findData(other)
    wait_for(qtbot, main_window, "overlay_shown", lambda: combo.activated.emit(index))
    assert main_window.current_explanation.cam.class_id == other


def test_tool_panel_can_open_images(qtbot, main_window, png_path):
    from PySide6.QtCore import Signal
    from PySide6.QtWidgets import QWidget

    class Panel(QWidget):
        open_image_requested = Signal(object)

    panel = Panel()
    dock = main_window.add_tool_panel(panel, "Batch")
    assert dock.widget() is panel
    assert dock.toggleViewAction() in main_window.panels_menu.actions()
    wait_for(qtbot, main_window, "image_shown", lambda: panel.open_image_requested.emit(png_path))
    assert main_window.current_xray.path == png_path
