"""Issue 29 #7 through the real window: rotate and flip (display only: the heat map turns
with the image, the analysis and the rulers keep the file's pixels), the CTR tool, the
DICOM tag browser, identity in the corners only when asked, studies and the prior."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage

from tests.dicom_factory import make_dicom
from tests.gui.conftest import open_and_wait
from xraydesk.gui.corner_overlay import corner_lines
from xraydesk.gui.image_view import TOOL_CTR, TOOL_RULER
from xraydesk.gui.study_browser import StudyBrowser
from xraydesk.gui.tag_browser import TagBrowser
from xraydesk.imaging.tags import MASK
from xraydesk.viewer.corners import HIDDEN_TEXT
from xraydesk.viewer.orientation import Orientation

SHOTS = Path("/tmp/xraydesk-reading-room")  # screenshots for a person to look at


def _film(path: Path, patient: str = "P-0001", date: str = "20240102", study: str | None = None):
    rng = np.random.default_rng(3)
    pixels = rng.integers(200, 4000, (200, 160)).astype(np.uint16)
    extra = {"PatientID": patient, "StudyDate": date, "PatientAge": "054Y", "PatientSex": "M"}
    if study:
        extra["StudyInstanceUID"] = study
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_dicom(path, pixels, bits_stored=12, pixel_spacing=(0.2, 0.2), extra=extra)


def _click(qtbot, view, x: float, y: float) -> None:
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(x, y))
    )


def _shot(widget, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    widget.grab().save(str(SHOTS / f"{name}.png"))


def _rgb(image: QImage, x: int, y: int) -> np.ndarray:
    c = image.pixelColor(x, y)
    return np.array([c.red(), c.green(), c.blue()], dtype=int)


def test_rotation_and_flip_turn_image_and_heat_map_but_not_the_analysis(
    qtbot, main_window, dicom_path
):
    window, view = main_window, main_window.view
    open_and_wait(qtbot, window, dicom_path)  # until the heat map is shown
    assert view.has_heat_layer
    xray, prediction = window.current_xray, window.current_prediction
    pixels = xray.pixels.copy()
    rows, cols = xray.shape
    points = [(200.0, 300.0), (700.0, 500.0), (512.0, 800.0), (300.0, 900.0)]
    before = view.viewport().grab().toImage()
    colours = [
        _rgb(before, view.mapFromScene(QPointF(*p)).x(), view.mapFromScene(QPointF(*p)).y())
        for p in points
    ]
    composed = view.composed_image()

    window.actions_by_id["rotate_cw"].trigger()
    assert window.state.orientation == Orientation(90)
    # the file's first row is now the right-hand column of what is shown
    top_left, bottom_left = view.mapFromScene(QPointF(0, 0)), view.mapFromScene(QPointF(0, rows))
    assert top_left.x() > bottom_left.x() and abs(top_left.y() - bottom_left.y()) <= 1
    after = view.viewport().grab().toImage()
    for p, colour in zip(points, colours, strict=True):
        q = view.mapFromScene(QPointF(*p))  # the same image point, wherever it is now shown
        assert np.abs(_rgb(after, q.x(), q.y()) - colour).max() <= 24, p
    # exports are as shown: the composed image (heat map included) turned the same way
    turned = view.composed_image()
    assert (turned.width(), turned.height()) == (composed.height(), composed.width())
    assert (_rgb(turned, cols - 1 - 300, 200) == _rgb(composed, 200, 300)).all()
    _shot(window, "rotated-90")

    window.actions_by_id["flip_horizontal"].trigger()
    assert window.state.orientation == Orientation(270, True)
    assert "mirrored" in corner_lines(view)[1]
    # display only: same pixels, same prediction, no new analysis
    assert np.array_equal(window.current_xray.pixels, pixels)
    assert window.current_prediction is prediction
    assert window.current_xray is xray
    # rulers still measure the file's pixels (0.168 mm spacing on this sample)
    window.actions_by_id["tool_ruler"].trigger()
    _click(qtbot, view, 100, 100)
    _click(qtbot, view, 100, 600)
    (a, b) = view.measurements[0].points
    assert a[0] == pytest.approx(100, abs=2) and b[1] == pytest.approx(600, abs=2)
    assert float(view.measurement_texts()[0].split()[0]) == pytest.approx(500 * 0.168, abs=0.5)
    _shot(window, "flipped-ruler")
    window.actions_by_id["reset_orientation"].trigger()
    assert window.state.orientation.is_identity


def test_ctr_tool_two_lines_and_the_ratio(qtbot, main_window, tmp_path):
    window, view = main_window, main_window.view
    open_and_wait(qtbot, window, _film(tmp_path / "a.dcm"), until="image_shown")
    window.actions_by_id["tool_ctr"].trigger()
    assert view.tool == TOOL_CTR and window.actions_by_id["tool_ctr"].isChecked()
    for x, y in ((50, 100), (100, 100)):  # heart: 50 px = 10 mm
        _click(qtbot, view, x, y)
    assert view.measurements == [] and view._draft is not None
    for x, y in ((20, 120), (145, 120)):  # thorax: 125 px = 25 mm
        _click(qtbot, view, x, y)
    assert len(view.measurements) == 1
    text = view.measurement_texts()[0]
    assert text.startswith("CTR 0.4"), text
    ratio = float(text.split()[1])
    assert ratio == pytest.approx(50 / 125, abs=0.02)
    assert "mm" in text
    _shot(window, "ctr")
    window.actions_by_id["tool_ruler"].trigger()
    assert view.tool == TOOL_RULER and not window.actions_by_id["tool_ctr"].isChecked()


def test_corner_identity_hidden_until_asked_and_hidden_again_for_the_next_image(
    qtbot, main_window, tmp_path
):
    window, view = main_window, main_window.view
    open_and_wait(qtbot, window, _film(tmp_path / "a.dcm"), until="image_shown")
    top, bottom = corner_lines(view)
    assert HIDDEN_TEXT in top and "Doe" not in top and "P-0001" not in top
    assert "Study 2024-01-02" in top and "Spacing 0.2 × 0.2 mm" in bottom
    _shot(window, "corners-hidden")
    window.actions_by_id["show_identity"].trigger()
    assert window.metadata.patient_revealed  # one setting with the Image info panel
    top, _ = corner_lines(view)
    assert "Doe, Jane" in top and "ID P-0001" in top
    _shot(window, "corners-identity")
    window.actions_by_id["rotate_ccw"].trigger()
    assert window.state.orientation == Orientation(270)
    open_and_wait(qtbot, window, _film(tmp_path / "b.dcm"), until="image_shown")
    assert window.state.orientation.is_identity  # each film is first shown as stored
    assert not window.actions_by_id["show_identity"].isChecked()
    assert "Doe" not in corner_lines(view)[0]


def test_tag_browser_masks_identity_and_follows_the_switch(qtbot, main_window, tmp_path, png_path):
    window = main_window
    open_and_wait(qtbot, window, _film(tmp_path / "a.dcm"), until="image_shown")
    window.actions_by_id["tag_browser"].trigger()
    browser = window.findChild(TagBrowser)
    assert browser is not None and browser.isVisible()
    values = browser.values()
    assert values["PatientName"] == MASK and values["Modality"] == "DX"
    assert values["ImagerPixelSpacing"] == "[0.2, 0.2]"
    browser.search.setText("spacing")
    assert set(browser.values()) == {"ImagerPixelSpacing"}
    browser.search.setText("")
    window.actions_by_id["show_identity"].trigger()
    assert browser.values()["PatientName"] == "Doe^Jane"
    _shot(browser, "tag-browser")
    browser.close()
    open_and_wait(qtbot, window, png_path, until="image_shown")
    window.actions_by_id["tag_browser"].trigger()
    assert "No DICOM tags" in window.banner.text and png_path.name in window.banner.text


def test_prior_of_the_same_patient_opens_in_the_compare_pane(qtbot, main_window, tmp_path):
    window = main_window
    folder = tmp_path / "cd"
    folder.mkdir()
    today = _film(folder / "today.dcm", date="20240510")
    _film(folder / "prior-2023.dcm", date="20230101")
    _film(folder / "prior-2020.dcm", date="20200101")
    _film(folder / "other-patient.dcm", patient="P-0002", date="20231231")
    open_and_wait(qtbot, window, today, until="image_shown")
    with qtbot.waitSignal(window.compare_loader.loaded, timeout=60_000):
        window.actions_by_id["compare_prior"].trigger()
    assert window.compare_view.isVisible()
    assert window.compare_view.xray.path.name == "prior-2023.dcm"
    _shot(window, "prior-compare")
    window.actions_by_id["studies"].trigger()
    browser = window.findChild(StudyBrowser)
    assert browser is not None
    assert [p.first_file.name for p in browser.priors] == ["prior-2023.dcm", "prior-2020.dcm"]
    assert browser.tree.topLevelItemCount() == 4
    assert "2 prior studies, newest 2023-01-01" in browser.note.text()
    assert browser.tree.topLevelItem(0).text(4) == MASK  # PatientID hidden by default
    relations = [browser.tree.topLevelItem(i).text(5) for i in range(4)]
    assert relations == ["on screen", "other patient", "prior (newest)", "prior"]
    _shot(browser, "studies")
    browser.close()


def test_no_prior_without_a_patient_id_says_why(qtbot, main_window, tmp_path):
    window = main_window
    lone = _film(tmp_path / "lone.dcm", patient="")
    open_and_wait(qtbot, window, lone, until="image_shown")
    window.actions_by_id["compare_prior"].trigger()
    assert "no PatientID" in window.banner.text and "lone.dcm" in window.banner.text
    assert not window.compare_view.isVisible()


def test_prior_from_the_pacs_worklist(qtbot, main_window, tmp_path):
    """A prior received over DICOM (in the worklist, stored in another folder) is found."""
    from xraydesk.dicomnet.worklist import WorkItem, Worklist
    from xraydesk.imaging.studies import read_keys

    window = main_window
    today = _film(tmp_path / "today" / "today.dcm", date="20240510")
    received = _film(tmp_path / "pacs" / "received.dcm", date="20220202")
    keys = read_keys(received)
    with Worklist() as worklist:
        item = WorkItem(sop_uid="1.2.3.4", study_uid=keys.study_uid, series_uid=keys.series_uid)
        item.patient_id, item.study_date, item.path = keys.patient_id, keys.study_date, received
        worklist.add(item)
    open_and_wait(qtbot, window, today, until="image_shown")
    with qtbot.waitSignal(window.compare_loader.loaded, timeout=60_000):
        window.actions_by_id["compare_prior"].trigger()
    assert window.compare_view.xray.path == received
