"""Issue 27 item 5: a heat-map PNG that leaves the app carries its legend: the colour
scale, the class the map supports, the model (name and version), "Not for diagnosis";
and a row given no class gets no heat-map PNG at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.gui.heatmap_models import make_leaning_model
from tests.hostile_files import small_png
from xraydesk.batch.run import BatchOptions, BatchRun
from xraydesk.classifier import Classifier
from xraydesk.explain.bounded import bounded_overlay
from xraydesk.explain.export import write_cam_png
from xraydesk.explain.heatmaps import heat_map
from xraydesk.explain.legend import NOT_FOR_DIAGNOSIS, legend_lines, with_legend
from xraydesk.explain.overlay import DEFAULT_OPACITY, colormap_lut
from xraydesk.imaging import load_xray
from xraydesk.model.card import ModelCard
from xraydesk.model.site_profile import SiteProfile, save_profile

NOTICE_RGB = np.array([255, 190, 90])


def has_colour(pixels: np.ndarray, rgb: np.ndarray, tolerance: int = 6) -> int:
    """How many pixels are within ``tolerance`` of ``rgb`` in every channel."""
    flat = pixels.reshape(-1, 3).astype(int)
    return int((np.abs(flat - rgb.astype(int)).max(axis=1) <= tolerance).sum())


@pytest.fixture(scope="module")
def covid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_leaning_model(tmp_path_factory.mktemp("lean"), "covid19", "legend-lean")


def test_legend_lines_name_the_class_the_model_and_the_notice():
    assert legend_lines("Normal", "chest-3class 1.1") == (
        "Heat map: what supports Normal",
        "Model: chest-3class 1.1",
        NOT_FOR_DIAGNOSIS,
    )
    assert legend_lines(None, "")[0] == "No heat map shown"


def test_legend_strip_holds_the_scale_only_with_a_map():
    picture = np.full((300, 400, 3), 40, np.uint8)
    labelled = with_legend(picture, "Pneumonia", "m 1.0")
    assert labelled.shape[1] == 400 and labelled.shape[0] > 300
    assert (labelled[:300] == picture).all()  # the picture itself untouched
    strip = labelled[300:]
    for k in (0, 128, 255):
        assert has_colour(strip, colormap_lut()[k]), f"colour-scale entry {k} missing"
    assert has_colour(strip, NOTICE_RGB, 10) > 20  # "Not for diagnosis" in its colour
    bare = with_legend(picture, None, "m 1.0")[300:]
    assert not has_colour(bare, colormap_lut()[128])  # no scale without a map
    assert has_colour(bare, NOTICE_RGB, 10) > 20


def test_batch_heat_map_png_carries_its_legend(covid_model, tmp_path):
    source = tmp_path / "film.png"
    source.write_bytes(small_png(size=480, seed=4))
    classifier = Classifier.load(covid_model, device="cpu")
    out = write_cam_png(classifier, source, tmp_path / "cams")
    xray = load_xray(source)
    overlay = bounded_overlay(xray, heat_map(classifier, xray).heatmap, DEFAULT_OPACITY)
    with Image.open(out) as png:
        saved = np.asarray(png.convert("RGB"))
    height = overlay.shape[0]
    assert saved.shape[1] == overlay.shape[1] and saved.shape[0] > height
    assert np.abs(saved[:height].astype(int) - overlay.astype(int)).max() <= 1
    strip = saved[height:]
    for k in (0, 255):
        assert has_colour(strip, colormap_lut()[k])
    assert has_colour(strip, NOTICE_RGB, 10) > 10


def test_rows_given_no_class_get_no_heat_map_png(tmp_path):
    """An indeterminate row (here the site profile's rule withholds every answer): its
    map would name the class the row withholds, so none is written."""
    model = make_leaning_model(tmp_path / "model", "covid19", "unsure-batch", 1.0)
    card = ModelCard.read(model)
    thresholds = {cid: 0.5 for cid in card.class_ids}
    save_profile(SiteProfile(card.name, card.weights_sha256, 1.0, 0.99, thresholds, 0.9), card)
    folder = tmp_path / "films"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.png").write_bytes(small_png(size=96, seed=i))
    cams = tmp_path / "cams"
    classifier = Classifier.load(model, device="cpu")
    rows = list(BatchRun([folder], classifier, BatchOptions(cam_dir=cams)).rows())
    assert len(rows) == 3 and all(r.ok and r.prediction is None for r in rows)
    assert not cams.exists() or not list(cams.iterdir())
