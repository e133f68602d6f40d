"""``xraydesk classify`` on folders: CSV, JSON lines, the results database, exit codes,
the progress bar (on a terminal only) and a full disk while writing the CSV."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.batch_helpers import expected_order, make_folder, write_png
from tests.paths import REPO_ROOT
from xraydesk import paths
from xraydesk.batch.database import ResultStore
from xraydesk.cli import classify as classify_cli
from xraydesk.cli import main


@pytest.fixture
def clean_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "clean"
    for i in range(3):
        write_png(folder / f"a{i}.png", seed=i)
    write_png(folder / "nested" / "b.png", seed=10)
    return folder


def json_rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_folder_recursive_csv_and_table(clean_folder, tmp_path, test_model_path, capsys):
    out = tmp_path / "out.csv"
    args = ["classify", str(clean_folder), "--recursive", "--csv", str(out)]
    assert main([*args, "--model", str(test_model_path)]) == 0
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[0].startswith("FILE\tPREDICTION") and len(table) == 5
    with open(out, newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    assert [Path(r["path"]).name for r in records] == ["a0.png", "a1.png", "a2.png", "b.png"]
    assert all(r["error"] == "" and len(r["sha256"]) == 64 for r in records)
    assert "4 of 4 classified" in captured.err and "recorded as run 1" in captured.err
    assert "\r" not in captured.err  # not a terminal: no progress bar


def test_json_lines_error_rows_and_exit_status(tmp_path, test_model_path, capsys):
    folder = make_folder(tmp_path / "study")
    code = main(["classify", str(folder), "-r", "--json", "--model", str(test_model_path)])
    assert code == 1  # one file failed
    captured = capsys.readouterr()
    rows = json_rows(captured.out)
    assert [Path(r["path"]) for r in rows] == expected_order(folder)
    errors = [r for r in rows if r["error"]]
    assert [Path(r["path"]).name for r in errors] == ["broken.png"]
    assert errors[0]["prediction"] is None and errors[0]["probabilities"] is None
    assert "1 failed" in captured.err and "1 non-image files skipped" in captured.err
    assert "1 hidden entries skipped" in captured.err


def test_rerun_reuses_and_no_skip_reclassifies(clean_folder, test_model_path, capsys):
    args = ["classify", str(clean_folder), "-r", "--json", "--model", str(test_model_path)]
    assert main(args) == 0
    first = json_rows(capsys.readouterr().out)
    assert main(args) == 0
    captured = capsys.readouterr()
    second = json_rows(captured.out)
    assert all(r["reused"] for r in second) and "4 of them reused" in captured.err
    assert [r["probabilities"] for r in second] == [r["probabilities"] for r in first]
    assert main([*args, "--no-skip"]) == 0
    third = json_rows(capsys.readouterr().out)
    assert not any(r["reused"] for r in third)
    with ResultStore() as store:
        assert [run.reused for run in store.runs()] == [0, 4, 0]  # newest first


def test_single_files_are_not_recorded(clean_folder, test_model_path, capsys):
    image = clean_folder / "a0.png"
    assert main(["classify", str(image), "--json", "--model", str(test_model_path)]) == 0
    assert len(json_rows(capsys.readouterr().out)) == 1
    assert not (paths.data_dir() / "results.sqlite").exists()


def test_usage_and_model_errors_exit_2(clean_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["classify", str(clean_folder), "--no-such-option"])
    assert info.value.code == 2
    missing_model = tmp_path / "nowhere.json"
    assert main(["classify", str(clean_folder), "--model", str(missing_model)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_progress_bar_on_a_terminal(clean_folder, test_model_path, capsys, monkeypatch):
    monkeypatch.setattr(classify_cli, "is_terminal", lambda stream: True)
    assert main(["classify", str(clean_folder), "-r", "--model", str(test_model_path)]) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "\r[" in err and "img/s" in err and "4/4" in err
    summary_at = err.index("xraydesk: 4 of 4 classified")
    *_, last_bar, blank, rest = err[:summary_at].split("\r")
    assert last_bar.startswith("[") and "4/4" in last_bar
    # the bar is cleared before the summary: overwritten with blanks, cursor back at 0
    assert blank == " " * len(blank) and len(blank) >= len(last_bar) and rest == ""
    assert "\r" not in captured.out and "[" not in captured.out  # rows never hold the bar


def test_full_disk_while_writing_the_csv(
    clean_folder, tmp_path, test_model_path, monkeypatch, capsys
):
    calls = {"n": 0}

    def write(self, row):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._writer.writerow([str(row.path)])

    monkeypatch.setattr(classify_cli.CsvOutput, "write", write)
    out = tmp_path / "full" / "out.csv"
    args = ["classify", str(clean_folder), "-r", "--csv", str(out)]
    assert main([*args, "--model", str(test_model_path)]) == 1
    err = capsys.readouterr().err
    assert f"{out}: could not write the CSV file (the disk is full)" in err
    assert not out.exists() and not list(out.parent.glob(".*partial"))
    with ResultStore() as store:
        assert store.integrity_ok()
        run = store.runs()[0]
        assert run.status == "cancelled" and "disk is full" in run.message
        assert store.row_count(run.id) >= 2  # rows finished before are kept


def test_samples_json_one_valid_object_per_file(samples_dir, test_model_path, capsys):
    args = ["classify", "--json", str(samples_dir), "--recursive", "--model", str(test_model_path)]
    assert main(args) == 0
    rows = json_rows(capsys.readouterr().out)
    files = sorted(p for p in samples_dir.rglob("*") if p.is_file())
    assert sorted(Path(r["path"]) for r in rows) == files
    for row in rows:
        assert row["error"] is None
        assert (row["prediction"] or row["withheld_prediction"]) in row["probabilities"]
        assert sum(row["probabilities"].values()) == pytest.approx(1.0)


def test_piped_output_has_no_progress_bar(clean_folder, test_model_path, tmp_path):
    env = {**os.environ, "XRAYDESK_DATA_DIR": str(tmp_path / "data")}
    args = ["classify", str(clean_folder), "-r", "--json", "--model", str(test_model_path)]
    done = subprocess.run(
        [sys.executable, "-m", "xraydesk", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(json_rows(done.stdout)) == 4
    assert "\r" not in done.stderr and "\x1b[" not in done.stderr
    assert "4 of 4 classified" in done.stderr
