"""Warnings everywhere a batch result appears (issue 14): rows, JSON, CSV, the results
database (with the migration of an older one) and ``xraydesk classify --auto-orient``."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.paths import REPO_ROOT
from tests.xrays import split_test_paths
from xraydesk.batch.database import ResultStore
from xraydesk.batch.rows import ResultRow, export_rows
from xraydesk.batch.run import BatchOptions, BatchRun, classify_paths
from xraydesk.cli import main
from xraydesk.files import sha256_file
from xraydesk.imaging.loader import load_xray
from xraydesk.trust.codes import (
    INDETERMINATE,
    INVERTED,
    NOT_CHEST,
    OUT_OF_DISTRIBUTION,
    ROTATED,
    ResultWarning,
)

CHEST = REPO_ROOT / "models" / "chest-3class.json"


def _save(path: Path, unit: np.ndarray) -> Path:
    Image.fromarray(np.clip(unit * 255 + 0.5, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def mixed_folder(tmp_path: Path, shared_data: Path) -> Path:
    """Two real test-split radiographs (upright, and one turned 90 degrees) and noise."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    first, second = (load_xray(shared_data / p).render() for p in split_test_paths(2))
    _save(folder / "a_upright.png", first)
    _save(folder / "b_turned.png", np.rot90(second))
    _save(folder / "c_noise.png", np.random.default_rng(0).random((224, 224)))
    return folder


def test_rows_carry_warnings_and_a_flagged_image_keeps_its_row(mixed_folder, test_classifier):
    rows = list(classify_paths(sorted(mixed_folder.iterdir()), test_classifier))
    assert [r.path.name for r in rows] == ["a_upright.png", "b_turned.png", "c_noise.png"]
    assert all(r.ok and r.probabilities for r in rows)  # nothing dropped
    codes = [r.warning_codes for r in rows]
    assert ROTATED not in codes[0] and NOT_CHEST not in codes[0]
    assert ROTATED in codes[1] and NOT_CHEST in codes[2]
    assert all(isinstance(w, ResultWarning) and w.message for r in rows for w in r.warnings)


def test_json_csv_and_database_hold_the_stable_codes(mixed_folder, test_classifier, tmp_path):
    batch = BatchRun([mixed_folder], test_classifier, BatchOptions())
    rows = list(batch.rows())
    with ResultStore() as store:
        stored = list(store.iter_rows(batch.run_id))
        class_ids = store.run(batch.run_id).class_ids
        export_rows(iter(stored), class_ids, tmp_path / "run.json", "json")
        export_rows(iter(stored), class_ids, tmp_path / "run.csv", "csv")
    assert [r.warnings for r in stored] == [r.warnings for r in rows]
    objects = json.loads((tmp_path / "run.json").read_text())
    assert [o["warnings"] for o in objects] == [r.warning_codes for r in rows]
    assert objects[2]["warnings"] == [NOT_CHEST] or NOT_CHEST in objects[2]["warnings"]
    assert all(m["code"] in o["warnings"] for o in objects for m in o["warning_messages"])
    with open(tmp_path / "run.csv", newline="") as fh:
        records = list(csv.DictReader(fh))
    assert [r["warnings"] for r in records] == [";".join(r.warning_codes) for r in rows]
    # A re-run reuses stored rows with their warnings (the turned one is classified again).
    again = list(BatchRun([mixed_folder], test_classifier, BatchOptions()).rows())
    assert [r.reused for r in again] == [True, False, True]
    assert [r.warning_codes for r in again] == [r.warning_codes for r in rows]


def test_a_database_from_before_warnings_gains_the_column_and_is_not_reused(
    tmp_path, mixed_folder, test_classifier
):
    db = tmp_path / "results.sqlite"
    options = BatchOptions(db_path=db)
    first = BatchRun([mixed_folder], test_classifier, options)
    list(first.rows())
    conn = sqlite3.connect(db)  # the results table as it was before issue 14
    kept = [r[1] for r in conn.execute("PRAGMA table_info(results)") if r[1] != "warnings"]
    conn.executescript(
        f"CREATE TABLE old AS SELECT {', '.join(kept)} FROM results; DROP TABLE results;"
        " ALTER TABLE old RENAME TO results;"
    )
    conn.commit()
    conn.close()
    with ResultStore(db) as store:
        columns = [row[1] for row in store._connection().execute("PRAGMA table_info(results)")]
        old_rows = list(store.iter_rows(first.run_id))
    assert "warnings" in columns
    assert all(r.warnings == [] for r in old_rows)  # NULL reads as none...
    rerun = list(BatchRun([mixed_folder], test_classifier, options).rows())
    assert not any(r.reused for r in rerun)  # ...but unchecked rows are checked again
    assert NOT_CHEST in rerun[2].warning_codes


def test_row_json_without_warnings_has_an_empty_list():
    row = ResultRow(Path("x.png"), "m 1", prediction="normal", probabilities={"normal": 1.0})
    assert row.to_json_dict()["warnings"] == [] and not row.flagged


def test_cli_auto_orient_corrects_in_memory_and_says_so(tmp_path, shared_data, capsys):
    path = split_test_paths(3)[2]
    unit = load_xray(shared_data / path).render()
    upright = _save(tmp_path / "upright.png", unit)
    turned = _save(tmp_path / "turned.png", np.rot90(unit, 3))
    inverted = _save(tmp_path / "inverted.png", 1.0 - unit)
    before = {p: sha256_file(p) for p in (turned, inverted)}
    args = ["classify", "--json", "--model", str(CHEST), "--device", "cpu"]
    assert main([*args, str(upright), str(turned), str(inverted)]) == 0
    plain = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert plain[0]["warnings"] == []
    # The gate's verdict is exact; a turned or negative film may also lie far from the
    # training features (out_of_distribution), which depends on the CPU's precision, and
    # fall below the card's operating rule (indeterminate). The gate withholds its class.
    unsure = {OUT_OF_DISTRIBUTION, INDETERMINATE}
    assert set(plain[1]["warnings"]) - unsure == {ROTATED}
    assert set(plain[2]["warnings"]) - unsure == {INVERTED}
    assert plain[1]["prediction"] is None and plain[1]["indeterminate"]
    assert plain[2]["prediction"] is None and plain[2]["indeterminate"]
    assert main([*args, "--auto-orient", str(upright), str(turned), str(inverted)]) == 0
    fixed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for row in fixed[1:]:
        assert row["prediction"] == plain[0]["prediction"]
        assert row["probabilities"] == pytest.approx(plain[0]["probabilities"], abs=1e-4)
        assert "corrected in memory" in row["warning_messages"][0]["message"]
    # Corrected, the film is the upright one again: only the correction is reported.
    assert fixed[1]["warnings"] == [ROTATED] and fixed[2]["warnings"] == [INVERTED]
    assert {p: sha256_file(p) for p in (turned, inverted)} == before
