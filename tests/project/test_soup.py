"""training/soup.py: the average of several runs of one recipe, refused for runs that are
not one model, weighed on the same films as its ingredients."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.model_factory import make_test_model
from tests.paths import REPO_ROOT
from tests.training_data import kermany_rows
from xraydesk.model.card import ModelCard
from xraydesk.model.saving import load_network
from xraydesk.trainer.dataset import Sample
from xraydesk.trainer.split import SPLIT_FILE, write_split

sys.path.insert(0, str(REPO_ROOT / "training"))

import soup

CLASSES = (("normal", "Normal"), ("bacterial", "Bacterial"), ("viral", "Viral"))


def _run(folder: Path, seed: int, rows, classes=CLASSES) -> Path:
    """A 'run': a random model card with a split of real Kermany films beside it."""
    card = make_test_model(folder, name="kids", classes=classes, seed=seed)
    samples = [Sample(Path(p), label, "kermany-pediatric", patient) for p, label, patient in rows]
    splits = ["val" if i % 2 == 0 else "test" for i in range(len(samples))]
    (card.with_suffix("")).mkdir(exist_ok=True)
    write_split(card.with_suffix("") / SPLIT_FILE, samples, splits)
    return card


@pytest.fixture(scope="module")
def runs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    rows = kermany_rows(shared_data, per_class=4)
    root = tmp_path_factory.mktemp("runs")
    return [_run(root / f"run{seed}", seed, rows) for seed in (1, 2)]


@pytest.mark.data
def test_the_soup_holds_the_mean_of_its_ingredients_weights(runs, tmp_path):
    cards = soup.check_ingredients(runs)
    path = soup.soup_card(cards, runs, tmp_path / "soup")
    card = ModelCard.read(path)
    assert [i["run"] for i in card.training["soup"]["ingredients"]] == ["run1", "run2"]
    assert (path.with_suffix("") / SPLIT_FILE).is_file()
    key = "layer1.0.conv1.weight"
    a, b = (load_network(c).state_dict()[key].numpy() for c in cards)
    mixed = load_network(card).state_dict()[key].numpy()
    assert not np.allclose(a, b)
    np.testing.assert_allclose(mixed, (a + b) / 2, atol=2e-3)  # float16 storage


@pytest.mark.data
def test_main_weighs_each_run_and_the_soup_on_the_same_films(runs, shared_data, tmp_path, capsys):
    figures = tmp_path / "soup.json"
    assert soup.main([*map(str, runs), "--data", str(shared_data), "--json", str(figures)]) == 0
    out = capsys.readouterr().out
    assert out.count("soup of ") == 2 and "run2 test: accuracy" in out  # val and test
    weighed = json.loads(figures.read_text())
    assert sorted(weighed["soup"]["ingredients"]) == sorted(map(str, runs))
    for part in ("val", "test"):
        supports = {
            name: sum(m["support"] for m in figures_[part]["per_class"].values())
            for name, figures_ in [*weighed["ingredients"].items(), ("soup", weighed["soup"])]
        }
        assert set(supports.values()) == {6}  # every film weighed, by every model


@pytest.mark.data
def test_runs_that_are_not_one_model_are_refused(shared_data, tmp_path):
    rows = kermany_rows(shared_data, per_class=2)
    one = _run(tmp_path / "a", 1, rows)
    other_classes = _run(tmp_path / "b", 2, rows, classes=(("normal", "N"), ("pneumonia", "P")))
    other_split = _run(tmp_path / "c", 3, rows[1:])
    with pytest.raises(SystemExit, match="other classes"):
        soup.check_ingredients([one, other_classes])
    with pytest.raises(SystemExit, match="another split"):
        soup.check_ingredients([one, other_split])
    with pytest.raises(SystemExit, match="two or more"):
        soup.check_ingredients([one])
    with pytest.raises(SystemExit, match=r"gone\.json: model card not found"):
        soup.check_ingredients([one, tmp_path / "gone.json"])


@pytest.mark.data
def test_the_staged_soup_keeps_nothing_a_run_measured_of_itself(shared_data, tmp_path):
    """``train_bundled --soup`` ships what ``staged_soup`` makes: the first run's card with
    the soup's own temperature, validation figures and OOD statistics, and without the
    first run's operating rule or its calibration notes (both made anew when it ships)."""
    from xraydesk.model.operating_rule import OperatingRule
    from xraydesk.trust.calibration import calibration_limitations

    rows = kermany_rows(shared_data, per_class=6)
    paths = [_run(tmp_path / f"run{seed}", seed, rows) for seed in (1, 2)]
    first = ModelCard.read(paths[0])
    first.training["stages"] = [{"stage": 1, "size": 64, "epochs": 1}]
    first.training["wall_time_s"] = 60.0
    first.temperature = 3.0
    first.metrics = {
        "test": {"ece": 0.01, "per_source": {"pool-a": {"n": 400, "ece": 0.2}}},
        "validation": {"n": 1, "accuracy": 1.0, "macro_auc": 1.0, "ece": 0.0, "nll": 0.0},
    }
    (note,) = calibration_limitations(first.metrics)
    first.limitations = ["kept: a limit of the data", note]
    first.operating_rule = OperatingRule.from_dict(
        {"measure": "top_probability", "threshold": 0.9, "chosen_from": "validation_split"},
        "test",
    )
    first.training["ood"] = {"stale": True}
    first.write(paths[0])
    card_path, stages, history, wall = soup.staged_soup(
        paths, shared_data, tmp_path / "soup", "cpu"
    )
    card = ModelCard.read(card_path)
    assert stages == first.training["stages"] and wall == 60.0
    assert history == paths[0].with_suffix("") / "history.json"
    assert card.operating_rule is None and card.limitations == ["kept: a limit of the data"]
    assert card.temperature != 3.0 and card.metrics["validation"]["n"] == 9  # 18 films, half
    assert card.training.get("ood") != {"stale": True}
