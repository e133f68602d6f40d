"""The Qt-free rules under the viewer: presets, the W/L drag, view state, heat layer, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xraydesk.classifier.cache import ClassifierCache
from xraydesk.explain import blend_overlay
from xraydesk.imaging.xray import ImageMetadata, Window, XRay
from xraydesk.viewer.overlay_layer import heat_layer
from xraydesk.viewer.viewstate import MAX_OPACITY, MAX_ZOOM, MIN_ZOOM, ViewState
from xraydesk.viewer.windowing import (
    PRESET_FILE,
    PRESET_FULL,
    PRESET_LUNG,
    PRESET_MEDIASTINUM,
    dragged_window,
    format_window,
    window_presets,
)


def _xray(pixels: np.ndarray, inverted: bool = False, bits: int = 12) -> XRay:
    return XRay(
        pixels=pixels.astype(np.float32),
        bits_stored=bits,
        window=Window(center=2000.0, width=1000.0),
        metadata=ImageMetadata(path=Path("synthetic.dcm"), format="DICOM"),
        inverted=inverted,
    )


def test_presets_cover_file_full_and_two_chest_windows():
    pixels = np.linspace(0, 4095, 200 * 300).reshape(200, 300)
    presets = window_presets(_xray(pixels))
    assert presets.names == (PRESET_FILE, PRESET_FULL, PRESET_LUNG, PRESET_MEDIASTINUM)
    assert presets[PRESET_FILE] == Window(center=2000.0, width=1000.0)
    assert presets[PRESET_FULL].low == pytest.approx(0.0)
    assert presets[PRESET_FULL].high == pytest.approx(4095.0)
    lung, mediastinum = presets[PRESET_LUNG], presets[PRESET_MEDIASTINUM]
    # lung: the darker part of the display; mediastinum: the brighter part
    assert lung.center < mediastinum.center
    assert lung.low == pytest.approx(0.01 * 4095, rel=0.02)
    assert mediastinum.high == pytest.approx(0.997 * 4095, rel=0.01)
    assert presets.value_range == pytest.approx((0.0, 4095.0))


def test_presets_mirror_for_monochrome1():
    """MONOCHROME1 shows high values dark, so the lung window moves to high values."""
    pixels = np.linspace(0, 1023, 100 * 100).reshape(100, 100)
    normal = window_presets(_xray(pixels, inverted=False, bits=10))
    inverted = window_presets(_xray(pixels, inverted=True, bits=10))
    assert inverted[PRESET_LUNG].center == pytest.approx(1023 - normal[PRESET_LUNG].center, abs=2)
    assert inverted[PRESET_LUNG].center > inverted[PRESET_MEDIASTINUM].center


def test_presets_of_a_flat_image_stay_usable():
    presets = window_presets(_xray(np.full((10, 10), 7.0)))
    for name in presets.names:
        assert presets[name].width > 0


def test_drag_right_widens_and_down_raises_level():
    start = Window(center=100.0, width=50.0)
    wider = dragged_window(start, dx=60, dy=0, value_span=600.0)
    assert wider.width == pytest.approx(110.0)
    assert wider.center == pytest.approx(100.0)
    higher = dragged_window(start, dx=0, dy=30, value_span=600.0)
    assert higher.center == pytest.approx(130.0)
    assert higher.width == pytest.approx(50.0)
    narrowest = dragged_window(start, dx=-10_000, dy=0, value_span=600.0, min_width=0.6)
    assert narrowest.width == pytest.approx(0.6)


def test_drag_speed_follows_the_value_range():
    """A 16-bit image moves its window as far, relative to its range, as an 8-bit one."""
    w8 = dragged_window(Window(128, 255), 100, 0, value_span=255)
    w16 = dragged_window(Window(32768, 65535), 100, 0, value_span=65535)
    assert (w8.width - 255) / 255 == pytest.approx((w16.width - 65535) / 65535)


def test_format_window():
    assert format_window(Window(127.5, 255.0)) == "W 255  L 128"
    assert format_window(Window(0.5, 0.25)) == "W 0.25  L 0.5"


def test_view_state_reports_only_real_changes():
    state = ViewState()
    heard: list[frozenset[str]] = []
    state.subscribe(heard.append)
    assert state.update(invert=True, zoom=1.0) == frozenset({"invert"})
    assert state.update(invert=True) == frozenset()
    assert heard == [frozenset({"invert"})]
    state.update(zoom=1e6, overlay_opacity=3.0)
    assert state.zoom == MAX_ZOOM and state.overlay_opacity == MAX_OPACITY
    state.update(zoom=0.0, overlay_opacity=-1)
    assert state.zoom == MIN_ZOOM and state.overlay_opacity == 0.0
    state.unsubscribe(heard.append)
    with pytest.raises(AttributeError):
        state.update(no_such_field=1)


@pytest.mark.parametrize("opacity", [0.0, 0.3, 0.45, 1.0])
def test_heat_layer_composited_at_any_opacity_equals_blend_overlay(opacity):
    """Qt's source-over of the premultiplied layer reproduces the engine's blend."""
    rng = np.random.default_rng(1)
    heat = rng.random((40, 50), dtype=np.float32)
    gray = rng.random((40, 50), dtype=np.float32)
    layer = heat_layer(heat).astype(np.float64)
    assert np.all(layer[..., :3] <= layer[..., 3:])  # valid premultiplied alpha
    composite = layer[..., :3] * opacity + (gray * 255.0)[..., None] * (
        1.0 - opacity * layer[..., 3:] / 255.0
    )
    expected = blend_overlay(gray, heat, opacity).astype(np.float64)
    assert np.abs(composite - expected).max() <= 2.0


def test_heat_layer_is_transparent_where_the_model_did_not_look():
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[4:, 4:] = 1.0
    layer = heat_layer(heat)
    assert layer[:4, :4, 3].max() == 0
    assert layer[4:, 4:, 3].min() == 255


def test_classifier_cache_loads_once_per_model_and_device(test_model_path):
    cache = ClassifierCache(max_entries=1)
    first = cache.get(test_model_path, "cpu")
    assert cache.get(test_model_path, "cpu") is first
    assert cache.cached(test_model_path, "cpu")
    cache.clear()
    assert not cache.cached(test_model_path, "cpu")
