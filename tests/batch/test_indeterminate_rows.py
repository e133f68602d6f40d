"""Issue 27 #1: indeterminate as a first-class result in the batch engine's outputs.

A film the input gate flags (random pixels: ``not_chest``) and, under a site profile
whose operating rule withholds every answer, a real radiograph too, are classified yet
name no class: JSON and CSV rows have ``prediction`` null (empty), ``indeterminate``
true and the withheld top class only under ``withheld_prediction``; every other row has
``indeterminate`` false. The results database stores the flag (a database made before
the column gains it, and its rows are not reused), and the monitor counts these rows as
indeterminate.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.batch_helpers import write_png
from xraydesk.batch.database import _SCHEMA as SCHEMA
from xraydesk.batch.database import ResultStore, default_db_path, model_key
from xraydesk.batch.run import BatchOptions, BatchRun
from xraydesk.cli import main
from xraydesk.files import sha256_file
from xraydesk.model.card import ModelCard
from xraydesk.model.site_profile import SiteProfile, save_profile
from xraydesk.monitor.daily import daily_stats, merge
from xraydesk.trust.codes import INDETERMINATE, NOT_CHEST


@pytest.fixture
def folder(tmp_path: Path, samples_dir: Path) -> Path:
    """A real radiograph and random pixels the input gate refuses."""
    folder = tmp_path / "films"
    folder.mkdir()
    shutil.copy(samples_dir / "fullres" / "nih-00000001_000.png", folder / "a_real.png")
    write_png(folder / "b_noise.png", seed=3, size=(224, 224))
    return folder


def _classify(folder: Path, model: Path, out_csv: Path, capsys) -> list[dict]:
    args = ["classify", str(folder), "--model", str(model), "--device", "cpu", "--json"]
    assert main([*args, "--csv", str(out_csv)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _withhold_everything(model: Path) -> None:
    card = ModelCard.read(model)
    thresholds = {cid: 0.5 for cid in card.class_ids}
    profile = SiteProfile(card.name, card.weights_sha256, 20.0, 0.9, thresholds, 0.9, {"n": 4})
    save_profile(profile, card)


@pytest.mark.parametrize("rule", ["none", "site-profile"])
def test_json_csv_and_database_rows_say_indeterminate(
    rule, folder, test_model_path, tmp_path, capsys
):
    if rule == "site-profile":
        _withhold_everything(test_model_path)
    out_csv = tmp_path / "rows.csv"
    rows = _classify(folder, test_model_path, out_csv, capsys)
    by_name = {Path(r["path"]).name: r for r in rows}
    real, noise = by_name["a_real.png"], by_name["b_noise.png"]
    assert NOT_CHEST in noise["warnings"]
    expected = {"a_real.png": rule == "site-profile", "b_noise.png": True}
    for name, row in by_name.items():
        assert row["error"] is None and row["indeterminate"] is expected[name], row
        top = max(row["probabilities"], key=row["probabilities"].get)
        if row["indeterminate"]:  # no class named: the top class only under its own key
            assert row["prediction"] is None and row["withheld_prediction"] == top
        else:
            assert row["prediction"] == top and row["withheld_prediction"] is None
    assert (INDETERMINATE in real["warnings"]) is (rule == "site-profile")

    with out_csv.open(newline="") as handle:
        records = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    for name, row in by_name.items():
        record = records[name]
        assert record["indeterminate"] == ("true" if row["indeterminate"] else "false")
        assert record["prediction"] == (row["prediction"] or "")
        assert record["withheld_prediction"] == (row["withheld_prediction"] or "")

    with sqlite3.connect(default_db_path()) as conn:
        stored = dict(conn.execute("SELECT path, indeterminate FROM results").fetchall())
    assert {Path(p).name: bool(f) for p, f in stored.items()} == expected

    # a second run reuses the stored rows, flag and all
    again = _classify(folder, test_model_path, out_csv, capsys)
    assert all(r["reused"] for r in again)
    keys = ("path", "prediction", "indeterminate", "withheld_prediction", "warnings")
    assert [[r[k] for k in keys] for r in again] == [[r[k] for k in keys] for r in rows]

    # the monitor (and Prometheus, which reads the same figures) counts them
    (total,) = [merge(daily_stats(default_db_path()), model=rows[0]["model"])]
    assert total.images == 2 and total.indeterminate == sum(expected.values())
    assert total.answered == 2 - total.indeterminate


def _old_database(folder: Path, card: ModelCard, schema: str, columns: str, rows) -> Path:
    """A results database in an older ``schema`` holding one completed run of ``card``
    over ``folder``: ``rows(path)`` gives each file's values of the extra ``columns``."""
    db = default_db_path()
    db.parent.mkdir(parents=True, exist_ok=True)
    classes = json.dumps([[c.id, c.name] for c in card.classes])
    probs = json.dumps({"normal": 0.5, "pneumonia": 0.3, "covid19": 0.2})
    marks = ", ".join("?" for _ in columns.split(","))
    with sqlite3.connect(db) as conn:
        conn.executescript(schema)
        conn.execute(
            "INSERT INTO runs (folder, inputs, recursive, model, model_key, classes, started,"
            " status) VALUES (?, '[]', 0, ?, ?, ?, '2026-01-01T00:00:00', 'completed')",
            (str(folder), card.label, model_key(card), classes),
        )
        for seq, path in enumerate(sorted(folder.iterdir())):
            conn.execute(
                "INSERT INTO results (run_id, seq, path, sha256, model_key, probabilities,"
                f" classified_at, warnings, {columns}) VALUES (1, ?, ?, ?, ?, ?,"
                f" '2026-01-01T00:00:00', '[]', {marks})",
                (seq, str(path), sha256_file(path), model_key(card), probs, *rows(path)),
            )
    return db


def test_a_database_from_before_the_flag_gains_it_and_its_rows_are_not_reused(
    folder, test_classifier
):
    """A gate-flagged film stored with a class by an older XRayDesk (no ``indeterminate``
    column) is classified again, now withheld, never reused with its bare class."""
    old_schema = re.sub(
        r"warnings TEXT,[^\n]*\n\s*indeterminate INTEGER[^\n]*\n\s*finding TEXT[^\n]*",
        "warnings TEXT",
        SCHEMA,
    )
    assert "indeterminate" not in old_schema
    db = _old_database(
        folder, test_classifier.card, old_schema, "prediction", lambda _: ("normal",)
    )
    with ResultStore() as store:  # opening adds the column, NULL for the old rows
        old = list(store.iter_rows(1))
    assert [(r.prediction, r.indeterminate) for r in old] == [("normal", False)] * 2
    with sqlite3.connect(db) as conn:
        assert "indeterminate" in {r[1] for r in conn.execute("PRAGMA table_info(results)")}
    again = list(BatchRun([folder], test_classifier, BatchOptions()).rows())
    assert not any(r.reused for r in again)
    assert [(r.path.name, r.prediction is None, r.indeterminate) for r in again] == [
        ("a_real.png", False, False),
        ("b_noise.png", True, True),
    ]


def test_a_database_from_before_the_finding_reuses_only_rows_that_named_a_class(
    folder, test_classifier
):
    """An indeterminate row stored before ``finding`` existed (NULL there) may have
    missed what it finds, so it is classified again; a row that named a class needs no
    finding and is reused."""
    old_schema = re.sub(r"indeterminate INTEGER,[^\n]*\n\s*finding TEXT[^\n]*",
                        "indeterminate INTEGER", SCHEMA)  # fmt: skip
    assert "finding" not in old_schema

    def values(path: Path) -> tuple[str | None, int]:
        named = path.name == "a_real.png"
        return ("normal" if named else None), int(not named)

    _old_database(folder, test_classifier.card, old_schema, "prediction, indeterminate", values)
    with ResultStore() as store:  # opening adds the column, NULL for the old rows
        old = list(store.iter_rows(1))
    assert [(r.prediction, r.indeterminate, r.finding) for r in old] == [
        ("normal", False, None),
        (None, True, None),
    ]
    again = list(BatchRun([folder], test_classifier, BatchOptions()).rows())
    assert [(r.path.name, r.reused) for r in again] == [
        ("a_real.png", True),
        ("b_noise.png", False),
    ]
