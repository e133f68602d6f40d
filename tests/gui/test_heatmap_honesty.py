"""Issue 19 #2 and #3: an empty heat map is never shown as an explanation; the colour map
is perceptually uniform, low heat is transparent, the opacity is subtle and capped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.gui.conftest import open_and_wait
from tests.gui.heatmap_models import make_empty_cam_model
from xraydesk.explain import (
    DEFAULT_OPACITY,
    EMPTY_HEATMAP,
    MAX_OPACITY,
    blend_overlay,
    colormap_lut,
    heat_alpha,
    is_empty_heatmap,
)
from xraydesk.explain.overlay import TRANSPARENT_BELOW
from xraydesk.viewer.overlay_layer import heat_layer
from xraydesk.viewer.viewstate import ViewState


@pytest.fixture(scope="module")
def empty_cam_model(tmp_path_factory):
    return make_empty_cam_model(tmp_path_factory.mktemp("empty-cam"))


# -- the one flatness rule ----------------------------------------------------------------
def test_empty_flat_and_non_finite_maps_are_not_explanations():
    shape = (64, 80)
    assert is_empty_heatmap(np.zeros(shape, np.float32))  # max 0.0, the case
    assert is_empty_heatmap(np.full(shape, 0.004, np.float32))  # below the peak floor
    assert is_empty_heatmap(np.full(shape, 0.7, np.float32))  # flat: singles nothing out
    rng = np.random.default_rng(0)
    assert is_empty_heatmap(0.5 + 0.01 * rng.random(shape, dtype=np.float32))  # near-constant
    nan = np.zeros(shape, np.float32)
    nan[3, 3] = np.nan
    assert is_empty_heatmap(nan)
    assert is_empty_heatmap(np.zeros((0, 0), np.float32))


def test_a_focal_map_is_an_explanation():
    heat = np.zeros((70, 70), np.float32)
    heat[10:20, 10:20] = 1.0  # one Grad-CAM cell of a 7 x 7 grid
    assert not is_empty_heatmap(heat)
    ramp = np.tile(np.linspace(0, 1, 70, dtype=np.float32), (70, 1))
    assert not is_empty_heatmap(ramp)


# -- colour map and transparency -----------------------------------------------------------
def _lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* of sRGB colours (0..100)."""
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


def test_colour_map_is_perceptually_uniform_viridis():
    lut = colormap_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    lightness = _lightness(lut)
    steps = np.diff(lightness[::8])
    assert (steps > 0).all(), "lightness must rise steadily from low to high heat"
    assert steps.max() < 2.0 * steps.min()  # evenly: no band that jumps out (jet fails)
    matplotlib = pytest.importorskip("matplotlib")  # a test-only cross-check
    reference = matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255
    assert np.abs(reference - lut).max() <= 5


def test_low_heat_is_transparent_and_alpha_rises_with_heat():
    ramp = np.linspace(0, 1, 101, dtype=np.float32)
    alpha = heat_alpha(ramp)
    assert alpha[ramp <= TRANSPARENT_BELOW].max() == 0.0
    assert np.all(np.diff(alpha) >= 0) and alpha[-1] == pytest.approx(1.0)
    gray = np.full((1, 101), 0.5, np.float32)
    out = blend_overlay(gray, ramp[None, :], DEFAULT_OPACITY)
    film = round(0.5 * 255)
    low = ramp <= TRANSPARENT_BELOW
    assert (out[0, low] == film).all()  # the film untinted where the model barely looked
    assert np.abs(out[0, -1].astype(int) - film).max() > 20  # tinted where it looked most
    layer = heat_layer(ramp[None, :])
    assert layer[0, low, 3].max() == 0  # the viewer's layer: transparent there too


def test_opacity_default_is_subtle_and_capped():
    assert DEFAULT_OPACITY <= 0.4 and MAX_OPACITY <= 0.6
    state = ViewState()
    assert state.overlay_opacity == DEFAULT_OPACITY
    state.update(overlay_opacity=0.95)
    assert state.overlay_opacity == MAX_OPACITY
    assert ViewState(overlay_opacity=0.75).overlay_opacity == MAX_OPACITY  # an old setting


# -- the viewer, the report and the batch writer say so ---------------------------------
@pytest.mark.data
def test_viewer_and_report_say_the_heat_map_is_empty(
    qtbot, make_window, empty_cam_model, png_path, tmp_path
):
    window = make_window(model=empty_cam_model)
    open_and_wait(qtbot, window, png_path)
    explanation = window.current_explanation
    assert explanation is not None and explanation.empty
    assert not window.view.has_heat_layer
    label = window.results.cam_label.text()
    assert EMPTY_HEATMAP in label.lower() and "Explains" not in label
    assert "Heat map:" not in window.view.heat_caption
    out = window.export_report(tmp_path / "report.pdf")
    assert out is not None
    from xraydesk.gui.report import caption_text

    caption = caption_text(window.report_content())  # the line printed under the image
    assert EMPTY_HEATMAP in caption and "Grad-CAM for" not in caption


@pytest.mark.data
def test_batch_cam_writer_writes_no_png_for_an_empty_map(empty_cam_model, png_path, tmp_path):
    from xraydesk.classifier import Classifier
    from xraydesk.errors import XRayDeskError
    from xraydesk.explain.export import write_cam_png

    classifier = Classifier.load(empty_cam_model, device="cpu")
    with pytest.raises(XRayDeskError, match=EMPTY_HEATMAP):
        write_cam_png(classifier, png_path, tmp_path / "cams")
    assert not list((tmp_path).rglob("*.png"))


@pytest.mark.data
def test_a_real_map_is_still_written(test_classifier, png_path, tmp_path):
    from xraydesk.explain.export import write_cam_png

    out = write_cam_png(test_classifier, png_path, tmp_path)
    assert Image.open(out).mode == "RGB"
