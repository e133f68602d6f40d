"""The bundled models as committed in models/: they load, they are what their cards say,
and on held-out images of their own test split they perform as their cards report."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO_ROOT
from xraydesk.classifier import Classifier
from xraydesk.cli import main
from xraydesk.imaging import load_xray
from xraydesk.model.card import ModelCard
from xraydesk.paths import bundled_models_dir
from xraydesk.trainer.split import read_split

sys.path.insert(0, str(REPO_ROOT / "training"))

from train_bundled import load_recipe, stage_settings

BUNDLED = ["chest-3class", "pediatric-pneumonia"]
CHECKED = 96  # test images re-classified per model: enough to catch broken weights


@pytest.fixture(scope="module", params=BUNDLED)
def bundled(request) -> tuple[ModelCard, dict]:
    card_path = REPO_ROOT / "models" / f"{request.param}.json"
    assert card_path.is_file(), f"{card_path} is not shipped"
    recipe = load_recipe(request.param)
    return ModelCard.read(card_path), recipe


def test_bundled_models_are_listed_and_found():
    assert bundled_models_dir() is not None
    names = sorted(p.stem for p in bundled_models_dir().glob("*.json"))
    assert names == sorted(BUNDLED)


def test_card_matches_recipe_and_reports_every_target(bundled):
    card, recipe = bundled
    assert card.class_ids == recipe["train"]["classes"]
    assert card.weights_dtype == "float16"
    assert card.weights_path.stat().st_size < 50 * 2**20
    stages = stage_settings(recipe)
    assert card.preprocessing.size == stages[-1]["size"]  # the last stage's resolution
    assert card.training["settings"]["epochs"] == stages[-1]["epochs"]
    if "stages" in card.training:  # cards shipped since recipes have stages
        assert [(st["size"], st["epochs"]) for st in card.training["stages"]] == [
            (st["size"], st["epochs"]) for st in stages
        ]
    else:
        assert len(stages) == 1
    reported = {t["label"]: t for t in card.metrics["targets"]}
    assert set(reported) == {t["label"] for t in recipe["targets"]}
    assert all(t["value"] is not None for t in reported.values())
    md = card.path.with_suffix(".md").read_text()
    assert "does not diagnose" in md and "### Targets" in md
    if len(recipe["pools"]) > 1:  # one pool: the overall figures are the pool's
        assert set(card.metrics["test"]["per_source"]) == set(recipe["pools"])
        assert "### Per pool" in md


def test_shipped_weights_perform_as_their_card_says(bundled, shared_data: Path):
    """Re-classify a fixed random sample of the saved test split: accuracy near the card's."""
    card, _ = bundled
    classifier = Classifier.load(card.path, device="cpu")  # checks the sha256
    samples, splits = read_split(card.path.with_suffix("") / "split.csv")
    test = [s for s, split in zip(samples, splits, strict=True) if split == "test"]
    rng = np.random.default_rng(0)
    chosen = [test[i] for i in rng.choice(len(test), size=CHECKED, replace=False)]
    correct = 0
    for sample in chosen:
        prediction = classifier.predict(load_xray(shared_data / sample.path))
        correct += prediction.predicted == sample.label
    accuracy = correct / CHECKED
    # 96 draws: the standard error of an accuracy near 0.8 is about 0.04
    assert accuracy >= card.metrics["test"]["accuracy"] - 0.15, (card.name, accuracy)


def test_models_command_lists_both(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "chest-3class (default)" in out and "pediatric-pneumonia" in out
