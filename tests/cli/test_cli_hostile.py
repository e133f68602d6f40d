"""``xraydesk classify`` against hostile files (issue 18): no traceback, one row per file,
every number finite, a sound results database, and a table that stays a table.

The end-to-end run happens once per module, in a subprocess with a strict UTF-8 stdout
(as in a UTF-8 terminal), on the folder ``tests.hostile_files`` builds.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hostile_files import (
    ERROR,
    FORMULA_NAME,
    NON_UTF8_NAME,
    OK,
    SKIP,
    TAB_NEWLINE_NAME,
    Hostile,
    small_png,
    write_hostile_folder,
)
from tests.paths import REPO_ROOT
from xraydesk.batch.database import ResultStore
from xraydesk.batch.rows import ResultRow
from xraydesk.cli import classify as classify_cli
from xraydesk.cli import main

STRICT_UTF8 = {"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "0"}


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def strict_json(line: str) -> dict:
    """json.loads that refuses NaN and Infinity, as any strict JSON reader does."""
    return json.loads(line, parse_constant=_no_constants)


@dataclass
class HostileRun:
    folder: Path
    hostile: dict[str, Hostile]
    returncode: int
    stdout: str
    stderr: str
    csv_path: Path
    db_path: Path

    def rows(self) -> list[dict]:
        return [strict_json(line) for line in self.stdout.splitlines()]

    def expected(self, *kinds: str) -> set[str]:
        return {name for name, case in self.hostile.items() if case.expect in kinds}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory, test_model_path: Path) -> HostileRun:
    root = tmp_path_factory.mktemp("hostile-cli")
    folder = root / "in"
    hostile = write_hostile_folder(folder)
    out_csv, data = root / "out.csv", root / "data"
    env = {**os.environ, **STRICT_UTF8, "XRAYDESK_DATA_DIR": str(data)}
    args = ["classify", str(folder), "--csv", str(out_csv), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "xraydesk", *args, "--model", str(test_model_path)],
        capture_output=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    return HostileRun(
        folder=folder,
        hostile=hostile,
        returncode=done.returncode,
        stdout=done.stdout.decode("utf-8"),  # strict: JSON Lines are ASCII
        stderr=done.stderr.decode("utf-8", "backslashreplace"),
        csv_path=out_csv,
        db_path=data / "results.sqlite",
    )


def test_hostile_folder_no_traceback_and_exit_status_1(hostile_run: HostileRun) -> None:
    assert "Traceback" not in hostile_run.stderr, hostile_run.stderr
    assert hostile_run.returncode == 1, hostile_run.stderr  # some files failed, none crashed


def test_hostile_folder_one_json_row_per_file(hostile_run: HostileRun) -> None:
    rows = hostile_run.rows()
    names = [Path(row["path"]).name for row in rows]
    assert sorted(names) == sorted(hostile_run.expected(OK, ERROR)), hostile_run.stderr
    for row, name in zip(rows, names, strict=True):
        case = hostile_run.hostile[name]
        if case.expect == ERROR:
            assert row["error"] and row["prediction"] is None, (name, case.why, row)
        else:
            assert row["error"] is None, (name, case.why, row["error"])


def test_hostile_folder_every_number_finite(hostile_run: HostileRun) -> None:
    rows = hostile_run.rows()  # strict_json already refuses NaN and Infinity
    assert rows, hostile_run.stderr
    for row in rows:
        assert math.isfinite(row["seconds"])
        if row["error"] is None:
            probs = row["probabilities"]
            assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probs.values()), row
            assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
            assert (row["prediction"] or row["withheld_prediction"]) == max(probs, key=probs.get)


def test_hostile_folder_csv_one_row_per_file(hostile_run: HostileRun) -> None:
    assert hostile_run.csv_path.is_file(), hostile_run.stderr
    with open(hostile_run.csv_path, newline="", encoding="utf-8") as handle:  # valid UTF-8
        records = list(csv.DictReader(handle))
    assert len(records) == len(hostile_run.expected(OK, ERROR))
    for record in records:
        for key in ("p_normal", "p_pneumonia", "p_covid19"):
            assert record[key] == "" or math.isfinite(float(record[key])), record
    assert not list(hostile_run.csv_path.parent.glob(".*partial"))


def test_hostile_folder_csv_cells_are_not_formulas(hostile_run: HostileRun) -> None:
    """Issue 18 #6 (OWASP CSV injection): no cell may start with = + - @ as written."""
    with open(hostile_run.csv_path, newline="", encoding="utf-8") as handle:
        cells = [cell for record in csv.reader(handle) for cell in record]
    assert any(FORMULA_NAME in cell for cell in cells)
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")]


def test_hostile_folder_store_is_sound(hostile_run: HostileRun) -> None:
    assert hostile_run.db_path.is_file(), hostile_run.stderr
    with sqlite3.connect(hostile_run.db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (results,) = db.execute("SELECT COUNT(*) FROM results").fetchone()
        (bad,) = db.execute(
            "SELECT COUNT(*) FROM results WHERE error IS NULL AND prediction IS NULL"
            " AND indeterminate IS NOT 1"  # neither a class, an error nor a withheld verdict
        ).fetchone()
    assert results == len(hostile_run.expected(OK, ERROR)) and bad == 0


def test_hostile_folder_summary_counts(hostile_run: HostileRun) -> None:
    failed = len(hostile_run.expected(ERROR))
    total = len(hostile_run.expected(OK, ERROR))
    err = hostile_run.stderr
    assert f"{total - failed} of {total} classified" in err, err
    assert f"{failed} failed" in err
    assert f"{len(hostile_run.expected(SKIP))} non-image files skipped" in err


# --- the table, the CSV writer and the JSON writer on their own ----------------------------


def _table_rows(out: str) -> list[list[str]]:
    return [line.split("\t") for line in out.splitlines()]


def test_table_stays_one_line_per_file_with_tabs_and_newlines_in_names(
    tmp_path: Path, test_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18 #11: a name with a tab or a newline split the row."""
    folder = tmp_path / "names"
    folder.mkdir()
    for name in (TAB_NEWLINE_NAME, FORMULA_NAME, "plain.png"):
        (folder / name).write_bytes(small_png())
    assert main(["classify", str(folder), "--model", str(test_model_path)]) == 0
    table = _table_rows(capsys.readouterr().out)
    assert len(table) == 4 and all(len(cells) == len(table[0]) for cells in table), table
    files = sorted(Path(cells[0]).name for cells in table[1:])
    assert files == sorted([FORMULA_NAME, "plain.png", "tab\\there\\nnewline.png"])


def test_non_utf8_name_in_table_and_csv(
    tmp_path: Path, test_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A single file (not recorded in the database) whose name is not UTF-8: the table
    shows the byte as \\xe9, the CSV holds the same escape as the database (display text)
    and stays valid UTF-8, and
    no hidden partial CSV is left (it was, after the UnicodeEncodeError)."""
    path = tmp_path / NON_UTF8_NAME
    path.write_bytes(small_png())
    out_csv = tmp_path / "out.csv"
    args = ["classify", str(path), "--csv", str(out_csv), "--model", str(test_model_path)]
    assert main(args) == 0
    table = _table_rows(capsys.readouterr().out)
    assert len(table) == 2 and table[1][0].endswith("caf\\xe9-latin1.png")
    text = out_csv.read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert "caf\\xe9-latin1.png" in text
    assert not list(tmp_path.glob(".*partial"))


def test_partial_csv_left_by_a_killed_run_is_removed_not_piled_up(
    tmp_path: Path, test_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(small_png())
    out_csv = tmp_path / "out.csv"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no process: the side file of a killed writer
    stale = tmp_path / f".out.csv.{gone.pid}-0badc0de.partial"
    stale.write_text("path\nhalf a row from a run killed with kill -9")
    args = ["classify", str(folder), "--csv", str(out_csv), "--model", str(test_model_path)]
    assert main(args) == 0
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.csv"]
    assert "half a row" not in out_csv.read_text()


def test_csv_output_discarded_on_an_unexpected_error(tmp_path: Path) -> None:
    """Every ending but success deletes the side file; closing twice is harmless."""
    out = classify_cli.CsvOutput(tmp_path / "r.csv", ["normal"])
    out.write(ResultRow(path=tmp_path / "x.png", model="m 1", error="cannot read"))
    assert out.close(keep=False) and out.close(keep=True)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_probabilities_become_an_error_row() -> None:
    """Issue 18 #1: --json printed NaN (not JSON) as a "normal" result."""
    nan_row = ResultRow(
        path=Path("x.dcm"),
        model="m 1",
        prediction="normal",
        probabilities={"normal": math.nan, "pneumonia": math.inf, "covid19": 0.0},
    )
    row = classify_cli._finite_row(nan_row)
    assert row.error and "not finite" in row.error
    assert row.prediction is None and row.probabilities is None
    ids, names = ["normal", "pneumonia", "covid19"], {"normal": "Normal"}
    parsed = strict_json(classify_cli._format_row(row, ids, True, names))
    assert parsed["error"] == row.error and parsed["probabilities"] is None
    with pytest.raises(ValueError):  # the JSON writer itself refuses NaN
        classify_cli._format_row(nan_row, ids, True, names)
    fine = ResultRow(Path("y.png"), "m 1", "normal", {"normal": 0.5, "pneumonia": 0.5})
    assert classify_cli._finite_row(fine) is fine


def test_store_holds_what_the_cli_printed(tmp_path: Path, test_model_path: Path, capsys) -> None:
    """Hostile DICOM headers (issue 18 #1, #11) are stored as error rows, never as results."""
    folder = tmp_path / "dicoms"
    hostile = write_hostile_folder(folder)
    dicoms = [name for name in hostile if name.endswith(".dcm") and name not in ("x.dcm", "y.dcm")]
    for name in set(hostile) - set(dicoms):
        (folder / name).unlink()
    assert main(["classify", str(folder), "--json", "--model", str(test_model_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    printed = {Path(row["path"]).name: row for row in map(strict_json, lines)}
    assert sorted(printed) == sorted(dicoms)
    with ResultStore() as store:
        assert store.integrity_ok()
        run = store.runs()[0]
        assert store.row_count(run.id) == len(dicoms)
    for name in dicoms:
        assert (printed[name]["error"] is None) == (hostile[name].expect == OK), name
