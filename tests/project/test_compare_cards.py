"""training/compare_cards.py: the table that decides whether a trained model ships."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from tests.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "training"))

import compare_cards

CLASSES = [{"id": "normal"}, {"id": "covid19"}]


def _test_metrics(accuracy: float, covid_recall: float) -> dict:
    per_class = {
        "normal": {"recall": 0.9, "support": 10},
        "covid19": {"recall": covid_recall, "support": 10},
    }
    return {
        "accuracy": accuracy,
        "balanced_accuracy": accuracy,
        "macro_auc": 0.9,
        "ece": 0.05,
        "per_class": per_class,
        "pairwise_auc": {"normal_vs_covid19": 0.9},
        "per_source": {
            "pool-a": {
                "accuracy": accuracy,
                "per_class": {
                    "normal": {"recall": 0.0, "support": 0},  # no normal film in this pool
                    "covid19": {"recall": covid_recall, "support": 10},
                },
            }
        },
    }


def _card(folder: Path, version: str, accuracy: float, covid: float, test: list[str]) -> Path:
    card = {
        "name": "m",
        "version": version,
        "classes": CLASSES,
        "metrics": {
            "test": _test_metrics(accuracy, covid),
            "targets": [{"label": "accuracy", "value": accuracy, "at_least": 0.92, "met": False}],
        },
    }
    path = folder / "m.json"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card))
    (folder / "m").mkdir(exist_ok=True)
    rows = ["path,label,split"] + [f"{p},normal,test" for p in test] + ["t.png,normal,train"]
    (folder / "m" / "split.csv").write_text("\n".join(rows) + "\n")
    return path


def test_a_better_candidate_on_the_same_films_beats_the_old(tmp_path, capsys):
    old = _card(tmp_path / "old", "1.1", 0.90, 0.80, ["a.png", "b.png"])
    new = _card(tmp_path / "new", "2.0", 0.93, 0.80, ["b.png", "a.png"])
    assert compare_cards.main([str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "same test films: yes" in out
    assert "| accuracy | 0.900 | 0.930 | +0.030 | better |" in out
    assert "accuracy: 0.930 (at least 0.92) MISSED" in out  # the card's own record
    assert out.rstrip().endswith("verdict: beats: better on at least one figure, worse on none")
    pool = out[out.index("| test films of pool-a |") :]
    assert "normal recall" not in pool.split("\n\n")[0]  # no normal film there: no figure


def test_one_worse_figure_is_no_ship(tmp_path, capsys):
    old = _card(tmp_path / "old", "1.1", 0.90, 0.80, ["a.png"])
    new = _card(tmp_path / "new", "2.0", 0.95, 0.70, ["a.png"])
    compare_cards.main([str(old), str(new)])
    out = capsys.readouterr().out
    assert "| covid19 recall | 0.800 | 0.700 | -0.100 | worse |" in out
    assert "verdict: does not beat: worse on 2 figure(s)" in out  # all films and pool-a


def test_different_test_films_give_no_verdict(tmp_path, capsys):
    old = _card(tmp_path / "old", "1.1", 0.90, 0.80, ["a.png"])
    new = _card(tmp_path / "new", "2.0", 0.99, 0.99, ["z.png"])
    compare_cards.main([str(old), str(new)])
    out = capsys.readouterr().out
    assert "same test films: NO" in out
    assert "verdict: no verdict: the two cards were not tested on the same films" in out


def test_lower_ece_is_better_and_an_unreadable_card_is_a_message(tmp_path, capsys):
    row = compare_cards.Row("ECE", 0.05, 0.02, higher_is_better=False)
    assert row.judged == "better"
    assert dataclasses.replace(row, new=0.09).judged == "worse"
    assert dataclasses.replace(row, new=0.053).judged == "same"  # within the tolerance
    missing = tmp_path / "nope.json"
    assert compare_cards.main([str(missing), str(missing)]) == 2
    assert f"{missing}: cannot read the card" in capsys.readouterr().err
