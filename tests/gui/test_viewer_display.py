"""What the reader sees: window/level, inversion, heat map, zoom, cursor, patient fields."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.dicom_factory import make_dicom
from tests.gui.conftest import open_and_wait
from xraydesk.explain import blend_overlay
from xraydesk.gui.image_view import ImageView
from xraydesk.gui.metadata_panel import MASK
from xraydesk.gui.qt_images import rgb_array
from xraydesk.imaging.xray import ImageMetadata, Window, XRay
from xraydesk.viewer.viewstate import ViewState
from xraydesk.viewer.windowing import PRESET_LUNG, PRESET_MEDIASTINUM, window_presets


def _mouse(widget, kind, pos: QPointF, button, buttons) -> None:
    event = QMouseEvent(
        kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, event)


def _right_drag(view: ImageView, start: QPointF, end: QPointF) -> None:
    viewport = view.viewport()
    right = Qt.MouseButton.RightButton
    _mouse(viewport, QEvent.Type.MouseButtonPress, start, right, right)
    _mouse(viewport, QEvent.Type.MouseMove, (start + end) / 2, Qt.MouseButton.NoButton, right)
    _mouse(viewport, QEvent.Type.MouseMove, end, Qt.MouseButton.NoButton, right)
    _mouse(viewport, QEvent.Type.MouseButtonRelease, end, right, Qt.MouseButton.NoButton)


@pytest.fixture
def opened(qtbot, main_window, dicom_path):
    open_and_wait(qtbot, main_window, dicom_path)
    return main_window


@pytest.mark.data
def test_presets_and_right_drag_change_the_rendered_pixels(opened):
    view = opened.view
    original = view.rendered_gray.copy()
    opened.set_window_preset(PRESET_LUNG)
    lung = view.rendered_gray.copy()
    assert opened.state.preset == PRESET_LUNG
    assert np.abs(lung.astype(int) - original).mean() > 5
    opened.set_window_preset(PRESET_MEDIASTINUM)
    assert not np.array_equal(view.rendered_gray, lung)
    assert opened.preset_combo.currentText() == PRESET_MEDIASTINUM

    opened.reset_window()
    start_window = opened.state.window
    centre = QPointF(view.viewport().rect().center())
    _right_drag(view, centre, centre + QPointF(120, 60))
    window = opened.state.window
    assert window.width > start_window.width  # right: wider
    assert window.center > start_window.center  # down: higher level
    assert opened.state.preset is None
    assert opened.preset_combo.currentText() == "Custom"
    assert not np.array_equal(view.rendered_gray, original)
    assert opened.window_label.text().startswith("W ")


def test_windowing_uses_full_depth_not_8_bits(qtbot, main_window, tmp_path):
    """A 16-level window on 12-bit data still shows a smooth ramp (8-bit first would not)."""
    ramp = np.tile(np.arange(4096, dtype=np.uint16), (64, 1))
    path = make_dicom(tmp_path / "ramp.dcm", ramp, bits_stored=12, window=(2048, 4096))
    open_and_wait(qtbot, main_window, path, until="image_shown")
    main_window.set_window(Window(center=2000.0, width=16.0))
    band = main_window.view.rendered_gray[0, 1990:2010]
    assert len(np.unique(band)) >= 15
    assert band[0] == 0 and band[-1] == 255


@pytest.mark.data
def test_invert_flips_the_rendered_pixels(opened):
    before = opened.view.rendered_gray.astype(int)
    opened.actions_by_id["invert"].trigger()
    assert opened.state.invert and opened.actions_by_id["invert"].isChecked()
    after = opened.view.rendered_gray.astype(int)
    assert np.abs(after - (255 - before)).max() <= 1
    opened.set_invert(False)
    assert np.abs(opened.view.rendered_gray.astype(int) - before).max() == 0


@pytest.mark.data
def test_overlay_toggle_and_opacity_change_the_pixels(opened):
    view = opened.view
    with_overlay = rgb_array(view.composed_image()).astype(int)
    opened.actions_by_id["toggle_overlay"].trigger()  # H
    assert not opened.state.overlay_visible
    assert not opened.results.overlay_check.isChecked()
    without = rgb_array(view.composed_image()).astype(int)
    assert np.abs(with_overlay - without).mean() > 1
    # with the heat map hidden, the export is the plain grey image
    assert np.array_equal(without[..., 0], view.rendered_gray)

    opened.actions_by_id["toggle_overlay"].trigger()
    opened.results.opacity_slider.setValue(60)  # the cap (issue 19 #3)
    assert opened.state.overlay_opacity == pytest.approx(0.6)
    strong = rgb_array(view.composed_image()).astype(int)
    assert np.abs(strong - with_overlay).mean() > 1
    # what Qt composes is the engine's blend_overlay at the same opacity
    xray = opened.current_xray
    expected = blend_overlay(
        xray.render(opened.state.window, opened.state.invert),
        opened.current_explanation.cam.heatmap,
        0.6,
    ).astype(int)
    assert np.abs(strong - expected).max() <= 3

    opened.actions_by_id["opacity_down"].trigger()
    assert opened.results.opacity_slider.value() == 50
    assert opened.settings.overlay_opacity == pytest.approx(0.5)


@pytest.mark.data
def test_zoom_wheel_keeps_the_point_under_the_cursor(opened):
    view = opened.view
    fitted = opened.state.zoom
    assert opened.state.fit
    anchor = QPointF(200, 150)
    scene_before = view.mapToScene(anchor.toPoint())
    event = QWheelEvent(
        anchor,
        view.viewport().mapToGlobal(anchor),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.viewport(), event)
    assert opened.state.zoom == pytest.approx(fitted * 1.44, rel=1e-3)
    assert not opened.state.fit
    scene_after = view.mapToScene(anchor.toPoint())
    assert abs(scene_after.x() - scene_before.x()) <= 2 / opened.state.zoom + 1
    assert abs(scene_after.y() - scene_before.y()) <= 2 / opened.state.zoom + 1
    opened.actions_by_id["actual_size"].trigger()
    assert opened.state.zoom == pytest.approx(1.0)
    opened.actions_by_id["fit"].trigger()
    assert opened.state.zoom == pytest.approx(fitted)
    assert opened.zoom_label.text() == f"Zoom {fitted * 100:.0f}%"


@pytest.mark.data
def test_cursor_shows_position_and_modality_value(opened):
    view = opened.view
    target = view.mapFromScene(QPointF(300.5, 400.5))
    _mouse(
        view.viewport(),
        QEvent.Type.MouseMove,
        QPointF(target),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
    )
    value = opened.current_xray.pixels[400, 300]
    assert opened.cursor_label.text() == f"x 300  y 400   value {value:.0f}"


def test_drag_on_a_large_image_previews_then_renders_in_full(qtbot):
    """Windowing a big image while dragging uses a subsampled copy, then the full one."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4096, size=(2400, 2000)).astype(np.float32)
    xray = XRay(
        pixels=pixels,
        bits_stored=12,
        window=Window(2048, 4096),
        metadata=ImageMetadata(path=__import__("pathlib").Path("big.dcm"), format="DICOM"),
    )
    state = ViewState(window=xray.window)
    view = ImageView(state)
    try:
        view.resize(800, 600)
        view.show()
        view.set_image(xray, window_presets(xray))
        centre = QPointF(400, 300)
        right = Qt.MouseButton.RightButton
        _mouse(view.viewport(), QEvent.Type.MouseButtonPress, centre, right, right)
        _mouse(
            view.viewport(),
            QEvent.Type.MouseMove,
            centre + QPointF(50, 0),
            Qt.MouseButton.NoButton,
            right,
        )
        preview = view._base.pixmap()
        assert preview.width() < 2000 and view._base.scale() > 1
        _mouse(
            view.viewport(),
            QEvent.Type.MouseButtonRelease,
            centre + QPointF(50, 0),
            right,
            Qt.MouseButton.NoButton,
        )
        assert view._base.pixmap().width() == 2000 and view._base.scale() == 1
        assert view.rendered_gray.shape == (2400, 2000)
        assert np.array_equal(
            view.rendered_gray,
            np.clip(xray.render(state.window) * 255 + 0.5, 0, 255).astype(np.uint8),
        )
    finally:
        view.detach()
        view.close()
        view.deleteLater()


def test_patient_fields_hidden_until_revealed_and_never_logged(
    qtbot, main_window, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    pixels = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096).astype(np.uint16)
    path = make_dicom(tmp_path / "patient.dcm", pixels, bits_stored=12)
    open_and_wait(qtbot, main_window, path)
    panel = main_window.metadata
    assert all(label.text() == MASK for label in panel.patient_fields.values())
    panel.reveal_button.click()
    assert panel.patient_fields["Name"].text() == "Doe, Jane"
    assert panel.patient_fields["Patient ID"].text() == "P-0001"
    assert panel.patient_fields["Birth date"].text() == "1970-01-01"
    assert panel.fields["Study date"].text() == "2024-01-02"
    # a new image hides them again
    open_and_wait(qtbot, main_window, path, until="image_shown")
    assert panel.patient_fields["Name"].text() == MASK
    assert "Doe" not in caplog.text and "P-0001" not in caplog.text
