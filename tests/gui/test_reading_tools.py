"""Issue 19 #8: distance and angle in mm from PixelSpacing (px without it), the
magnifier, linked side-by-side comparison, age and sex in the overlay, presets on
12-16-bit data."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import open_and_wait
from tests.gui.reading_films import click_scene, film
from xraydesk.gui.image_view import TOOL_ANGLE, TOOL_PAN, TOOL_RULER
from xraydesk.imaging import load_xray
from xraydesk.viewer.measure import angle_degrees, distance_text
from xraydesk.viewer.windowing import PRESET_LUNG, PRESET_MEDIASTINUM, window_presets


def test_distance_and_angle_rules():
    assert distance_text((0, 0), (0, 100), (0.2, 0.3)) == "20.0 mm"  # rows use row spacing
    assert distance_text((0, 0), (100, 0), (0.2, 0.3)) == "30.0 mm"
    assert distance_text((0, 0), (30, 40), None) == "50 px"
    assert angle_degrees((10, 0), (0, 0), (0, 10), None) == pytest.approx(90.0)
    assert angle_degrees((10, 0), (0, 0), (10, 10), None) == pytest.approx(45.0)


def test_ruler_measures_mm_on_a_dicom_with_pixel_spacing(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film(tmp_path / "a.dcm"), until="image_shown")
    window.actions_by_id["tool_ruler"].trigger()
    assert window.view.tool == TOOL_RULER
    view = window.view
    click_scene(qtbot, view, 20, 30)
    click_scene(qtbot, view, 20, 130)
    assert len(view.measurements) == 1
    text = view.measurement_texts()[0]
    assert text.endswith(" mm")
    measured = float(text.split()[0])
    pixel = 1.0 / window.state.zoom  # a click lands on the nearest screen pixel
    assert measured == pytest.approx(20.0, abs=2 * pixel * 0.2 + 0.05)
    # drawn by dragging too
    start = view.mapFromScene(QPointF(10, 10))
    end = view.mapFromScene(QPointF(110, 10))
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view.viewport(), end)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)
    assert len(view.measurements) == 2
    assert float(view.measurement_texts()[1].split()[0]) == pytest.approx(20.0, abs=0.6)
    # the angle tool: three clicks
    window.actions_by_id["tool_angle"].trigger()
    assert view.tool == TOOL_ANGLE and not window.actions_by_id["tool_ruler"].isChecked()
    for x, y in ((120, 40), (60, 40), (60, 100)):
        click_scene(qtbot, view, x, y)
    assert view.measurement_texts()[2].endswith("°")
    assert float(view.measurement_texts()[2][:-1]) == pytest.approx(90.0, abs=3.0)
    window.actions_by_id["clear_measurements"].trigger()
    assert view.measurements == []
    window.actions_by_id["tool_angle"].trigger()
    assert view.tool == TOOL_PAN


def test_ruler_says_px_when_the_spacing_is_unknown(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film(tmp_path / "b.dcm", spacing=None), until="image_shown")
    window.set_tool(TOOL_RULER)
    click_scene(qtbot, window.view, 20, 30)
    click_scene(qtbot, window.view, 20, 130)
    assert window.view.measurement_texts()[0].endswith(" px")


def test_overlay_shows_age_and_sex_but_no_identifiers(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film(tmp_path / "c.dcm"), until="image_shown")
    assert window.view.patient_line == "female, 68 years"
    assert "Doe" not in window.view.patient_line


def test_magnifier_draws_a_loupe_at_the_cursor(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film(tmp_path / "d.dcm"), until="image_shown")
    view = window.view
    window.actions_by_id["magnifier"].trigger()
    assert view.magnifier
    # from elsewhere first: a move to where the cursor already is (an earlier test put it
    # there) sends no event, and the loupe would never be drawn
    qtbot.mouseMove(view.viewport(), view.mapFromScene(QPointF(20, 20)))
    qtbot.mouseMove(view.viewport(), view.mapFromScene(QPointF(80, 100)))
    QApplication.processEvents()
    with_loupe = view.viewport().grab().toImage()
    window.set_magnifier(False)
    without = view.viewport().grab().toImage()
    assert with_loupe != without


def test_comparison_links_zoom_pan_and_window(qtbot, make_window, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film(tmp_path / "now.dcm"), until="image_shown")
    other = film(tmp_path / "before.dcm", bits=16)
    with qtbot.waitSignal(window.compare_loader.loaded, timeout=60_000):
        assert window.compare_with(other)
    main, second = window.view, window.compare_view
    assert second.isVisible() and second.xray is not None
    assert "before.dcm" in second.title_text
    main.zoom_to(3.0)
    assert second.state.zoom == pytest.approx(3.0)  # same size: the same width on screen
    bar = main.horizontalScrollBar()
    bar.setValue(bar.value() + 60)
    centre = main.mapToScene(main.viewport().rect().center())
    other_centre = second.mapToScene(second.viewport().rect().center())
    assert other_centre.x() == pytest.approx(centre.x(), abs=2.0)
    assert other_centre.y() == pytest.approx(centre.y(), abs=2.0)
    second.zoom_to(1.5)  # either side leads
    assert main.state.zoom == pytest.approx(1.5)
    window.set_window_preset(PRESET_LUNG)
    assert second.state.preset == PRESET_LUNG
    low, high = second.presets.value_range
    assert low <= second.state.window.low and second.state.window.high <= high + 1
    window.close_compare()
    assert not second.isVisible()


@pytest.mark.parametrize("bits", [12, 14, 16])
def test_presets_fit_12_to_16_bit_data(tmp_path, bits):
    xray = load_xray(film(tmp_path / f"{bits}.dcm", bits=bits))
    presets = window_presets(xray)
    low, high = presets.value_range
    assert high > 2**bits / 2  # the real range, not 8 bits
    for name in (PRESET_LUNG, PRESET_MEDIASTINUM):
        window = presets[name]
        assert low <= window.low < window.high <= high
        assert window.width > (high - low) / 20  # a usable window, not a sliver
