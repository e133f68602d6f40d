"""The bundled-model recipe (training/train_bundled.py), run end to end on a tiny subset."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO_ROOT
from xraydesk.classifier import Classifier
from xraydesk.model.card import ModelCard
from xraydesk.trainer.full import epoch_order, group_balanced_probabilities

sys.path.insert(0, str(REPO_ROOT / "training"))

import train_bundled


@pytest.mark.parametrize("name", ["chest-3class", "pediatric-pneumonia"])
def test_recipes_are_complete(name):
    recipe = train_bundled.load_recipe(name)
    assert recipe["name"] == name
    assert recipe["train"]["base"] == "scratch"  # nothing pretrained exists here
    assert recipe["targets"], "every bundled model states the targets it is judged against"
    sources = {p: Path(f"/data/{p}/manifest.csv") for p in recipe["pools"]}
    config = train_bundled.train_config(recipe, Path("/data"), sources)
    config.validate()
    assert config.augment.hflip_p == 0.0
    for settings in train_bundled.stage_settings(recipe)[1:]:
        train_bundled.train_config(recipe, Path("/data"), sources, settings).validate()


def test_a_later_stage_may_not_change_the_split():
    recipe = train_bundled.load_recipe("chest-3class")
    recipe["stages"] = [{"size": 160, "seed": 7}]
    with pytest.raises(SystemExit, match="stage 2 of chest-3class changes seed"):
        train_bundled.stage_settings(recipe)


def test_a_later_stage_with_its_own_run_seed_trains_in_a_folder_of_its_own(tmp_path: Path):
    """A continuing job that repeats a finished stage with other random draws
    (``--add-stage '{..., "run_seed": 1}'``) must not find that stage's folder and keep it;
    a run seed given to every stage (``--run-seed``) keeps the plain names."""
    first = {"size": 128}
    stages = train_bundled.stage_settings(
        {"name": "x", "train": first, "stages": [{"size": 160}]}, [{"size": 224, "run_seed": 1}]
    )
    folders = [
        train_bundled.stage_folder(tmp_path, n, s, stages[0]) for n, s in enumerate(stages, 1)
    ]
    assert folders == [tmp_path, tmp_path / "stage-2", tmp_path / "stage-3-seed1"]
    everywhere = [{**s, "run_seed": 2} for s in stages[:2]]
    assert train_bundled.stage_folder(tmp_path, 2, everywhere[1], everywhere[0]) == (
        tmp_path / "stage-2"
    )


def test_stages_with_another_split_are_refused(tmp_path: Path):
    def stage(name: str, splits: list[str]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        with open(folder / "split.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "split"])
            writer.writerows([[f"pool/a{i}.png", sp] for i, sp in enumerate(splits)])
        (folder / "history.json").write_text(json.dumps([{"epoch": 1, "val_acc": 0.5}]))
        return folder

    first, same = stage("one", ["train", "test"]), stage("two", ["train", "test"])
    history = train_bundled.combine_stages([first, same], tmp_path, tmp_path / "h.json")
    assert [r["stage"] for r in json.loads(history.read_text())] == [1, 2]
    other = stage("three", ["test", "train"])
    with pytest.raises(SystemExit, match="stage 2 split its data differently"):
        train_bundled.combine_stages([first, other], tmp_path, tmp_path / "h.json")


def test_group_balancing_favours_small_pools_within_a_class():
    labels = np.array([0] * 900 + [0] * 100 + [1] * 500)
    sources = np.array(["kids"] * 900 + ["adults"] * 100 + ["adults"] * 500)
    p = group_balanced_probabilities(labels, sources)
    assert p.sum() == pytest.approx(1.0)
    assert p[labels == 0].sum() == pytest.approx(0.5)  # classes equal
    kids, adults = p[:900].sum(), p[900:1000].sum()
    assert adults / kids == pytest.approx(np.sqrt(100 / 900))  # sqrt-tempered, not equal
    order = epoch_order(list(range(1500)), labels, 0, 1, "groups", sources)
    assert len(order) == 1500
    assert order == epoch_order(list(range(1500)), labels, 0, 1, "groups", sources)


def smoke_run(shared_data: Path, folder: Path, *extra: str) -> Path:
    """The chest-3class recipe, every stage, on 8 images per pool and label at 64 px."""
    out = folder / "models"
    args = ["chest-3class", "--data", str(shared_data), "--out", str(out)]
    args += ["--work", str(folder / "work"), "--limit", "8", "--epochs", "1", "--size", "64"]
    assert train_bundled.main([*args, *extra]) == 0
    return out


@pytest.mark.slow
def test_smoke_run_ships_a_usable_model(shared_data: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(tmp_path / "elsewhere"))
    out = smoke_run(shared_data, tmp_path)
    card = ModelCard.read(out / "chest-3class.json")
    assert card.weights_dtype == "float16"
    assert (out / "chest-3class.safetensors").stat().st_size < 50 * 2**20
    assert card.class_ids == ["normal", "pneumonia", "covid19"]
    assert card.display_names["covid19"] == "COVID-19"
    assert card.preprocessing.equalize and card.preprocessing.size == 64
    targets = {t["label"]: t for t in card.metrics["targets"]}
    assert set(targets) == {"accuracy", "COVID-19 recall", "pneumonia-vs-normal AUROC"}
    assert all(t["value"] is not None for t in targets.values())
    assert set(card.metrics["test"]["per_source"]) == {
        "kermany-pediatric",
        "covid19-radiography",
        "ozturk-nih",
        "covid-cxnet",
    }
    assert card.temperature > 0 and card.training["hardware"]
    stages = train_bundled.stage_settings(train_bundled.load_recipe("chest-3class"))
    assert len(card.training["stages"]) == len(stages)  # every stage ran, each from the last
    history = json.loads((out / "chest-3class" / "history.json").read_text())
    assert sorted({r["stage"] for r in history}) == list(range(1, len(stages) + 1))
    with open(out / "chest-3class" / "split.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and not any(Path(r["path"]).is_absolute() for r in rows)
    patients = {}
    for r in rows:
        if r["patient"]:
            patients.setdefault((r["source"], r["patient"]), set()).add(r["split"])
    assert all(len(s) == 1 for s in patients.values()), "a patient landed in two splits"
    md = (out / "chest-3class.md").read_text()
    for heading in ("## Intended use", "## Data", "## Evaluation", "### Per pool", "## Training"):
        assert heading in md
    assert "does not diagnose" in md
    # an operating rule from the validation split (no held-out run here), said in the card
    rule = card.operating_rule
    assert rule is not None and rule.chosen_from == "validation_split"
    assert card.metrics["calibration_under_shift"]["applied_from"] == "validation split"
    assert "### When the model does not answer" in md and rule.source_text in md
    # the shipped model loads through the app's own path and gives a distribution
    classifier = Classifier.load(out / "chest-3class.json", device="cpu")
    assert classifier.card.weights_dtype == "float16"
    evaluation = json.loads((out / "chest-3class" / "evaluation.json").read_text())
    assert evaluation["n"] == card.metrics["test"]["n"]


@pytest.mark.slow
def test_same_recipe_and_seed_give_the_same_model(shared_data: Path, tmp_path: Path, monkeypatch):
    """Run twice from nothing: byte-identical weights, hence identical metrics."""
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(tmp_path / "elsewhere"))
    runs = [smoke_run(shared_data, tmp_path / run) for run in ("a", "b")]
    cards = [ModelCard.read(out / "chest-3class.json") for out in runs]
    assert cards[0].weights_sha256 == cards[1].weights_sha256
    assert cards[0].metrics["test"] == cards[1].metrics["test"]
    assert cards[0].temperature == cards[1].temperature


@pytest.mark.slow
def test_a_soup_of_two_runs_ships_like_a_trained_model(
    shared_data: Path, tmp_path: Path, monkeypatch
):
    """Two runs of the recipe with other run seeds, averaged (``--soup``): the card is the
    soup's own (weights, temperature, figures, OOD statistics, operating rule), not a
    copy of the first run's, and it names both runs."""
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(tmp_path / "elsewhere"))
    runs = [smoke_run(shared_data, tmp_path / f"r{k}", "--run-seed", str(k)) for k in (1, 2)]
    cards = [ModelCard.read(out / "chest-3class.json") for out in runs]
    assert cards[0].weights_sha256 != cards[1].weights_sha256
    assert [s["run_seed"] for s in cards[1].training["stages"]] == [2] * len(
        cards[1].training["stages"]
    )
    out = tmp_path / "soup" / "models"
    args = ["chest-3class", "--data", str(shared_data), "--out", str(out)]
    args += ["--work", str(tmp_path / "soup" / "work"), "--limit", "8"]
    args += ["--soup", *(str(r / "chest-3class.json") for r in runs)]
    assert train_bundled.main(args) == 0
    card = ModelCard.read(out / "chest-3class.json")
    assert [i["weights_sha256"] for i in card.training["soup"]["ingredients"]] == [
        c.weights_sha256 for c in cards
    ]
    assert card.weights_sha256 not in {c.weights_sha256 for c in cards}
    assert card.training["ood"] != cards[0].training["ood"]
    assert card.metrics["test"] != cards[0].metrics["test"]
    assert card.metrics["test"]["n"] == cards[0].metrics["test"]["n"]  # the same films
    assert card.operating_rule is not None and card.metrics["targets"]
    assert len(card.limitations) == len(set(card.limitations))
    assert "--soup RUN1.json RUN2.json" in card.training["command"]
    assert "runs of this recipe on the same split" in (out / "chest-3class.md").read_text()
    with open(out / "chest-3class" / "split.csv", newline="") as fh:
        assert not any(Path(r["path"]).is_absolute() for r in csv.DictReader(fh))
    classifier = Classifier.load(out / "chest-3class.json", device="cpu")  # the app's path
    assert classifier.card.temperature == card.temperature > 0


@pytest.mark.slow
def test_held_out_runs_after_shipping_go_into_the_card(
    shared_data: Path, tmp_path: Path, monkeypatch
):
    """``--held-out``: the model is shipped first (a killed table loses no model), then one
    run per pool left out, whose table the card keeps beside the audit."""
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(tmp_path / "elsewhere"))
    out = smoke_run(shared_data, tmp_path, "--held-out", "--held-out-epochs", "1")
    card = ModelCard.read(out / "chest-3class.json")
    table = card.metrics["held_out_sources"]
    assert set(table["sources"]) == set(train_bundled.load_recipe("chest-3class")["pools"])
    assert card.metrics["shortcut_audit"] and card.operating_rule is not None
    assert (out / "chest-3class" / "held_out_sources.json").is_file()
