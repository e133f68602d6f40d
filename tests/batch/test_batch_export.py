"""Exports of a stored run: CSV and JSON content, a full disk while writing, cells that would
start a spreadsheet formula (issue 18 #6), side files of killed exports (issue 18 #11)."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.batch_helpers import make_folder, write_png
from tests.paths import REPO_ROOT
from xraydesk.batch import rows as batch_rows
from xraydesk.batch.database import ResultStore
from xraydesk.batch.rows import ExportError, ResultRow, export_rows, write_csv
from xraydesk.batch.run import BatchOptions, BatchRun, classify_paths

CLASSES = ["normal", "pneumonia", "covid19"]


@pytest.fixture
def stored_run(tmp_path: Path, test_classifier):
    folder = make_folder(tmp_path / "study")
    batch = BatchRun([folder], test_classifier, BatchOptions(recursive=True))
    rows = list(batch.rows())
    return batch.run_id, rows


def test_csv_export_has_one_line_per_file_with_every_field(stored_run, tmp_path):
    run_id, rows = stored_run
    out = tmp_path / "exports" / "run.csv"
    with ResultStore() as store:
        info = store.run(run_id)
        assert export_rows(store.iter_rows(run_id), info.class_ids, out, "csv") == len(rows)
    with open(out, newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    assert list(records[0]) == [
        "path",
        "sha256",
        "model",
        "prediction",
        "indeterminate",
        "withheld_prediction",
        "finding",
        "p_normal",
        "p_pneumonia",
        "p_covid19",
        "seconds",
        "classified_at",
        "reused",
        "warnings",
        "error",
        "frames",  # empty here: the database does not keep the frame count
    ]
    assert [r["path"] for r in records] == [str(r.path) for r in rows]
    for record, row in zip(records, rows, strict=True):
        assert record["warnings"] == ";".join(row.warning_codes)
        assert record["sha256"] == row.content_hash
        assert record["model"] == "test-3class 0.0-test"
        assert record["indeterminate"] == ("true" if row.indeterminate else "false")
        assert record["withheld_prediction"] == (row.withheld_prediction or "")
        assert record["finding"] == (row.finding or "")
        if row.ok:
            assert record["prediction"] == (row.prediction or "") and record["error"] == ""
            assert float(record["p_pneumonia"]) == pytest.approx(
                row.probabilities["pneumonia"], abs=1e-6
            )
        else:
            assert record["prediction"] == "" and record["p_normal"] == ""
            assert record["error"] == row.error


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_exports(stored_run, tmp_path, fmt):
    run_id, rows = stored_run
    out = tmp_path / f"run.{fmt}"
    with ResultStore() as store:
        export_rows(store.iter_rows(run_id), store.run(run_id).class_ids, out, fmt)
    text = out.read_text(encoding="utf-8")
    objects = json.loads(text) if fmt == "json" else [json.loads(x) for x in text.splitlines()]
    assert len(objects) == len(rows)
    for obj, row in zip(objects, rows, strict=True):
        assert obj["path"] == str(row.path) and obj["sha256"] == row.content_hash
        assert obj["prediction"] == row.prediction and obj["error"] == row.error
        assert obj["probabilities"] == row.probabilities
        assert obj["model"] == row.model and obj["reused"] is False
        assert obj["classified_at"] == row.classified_at


@pytest.mark.parametrize(("fmt", "writer"), [("csv", "write_csv"), ("json", "write_json_array")])
def test_full_disk_while_exporting(stored_run, tmp_path, monkeypatch, fmt, writer):
    run_id, rows = stored_run
    original = getattr(batch_rows, writer)

    def fill_the_disk(rows_in, *args):
        def some_then_full():
            for k, row in enumerate(rows_in):
                if k == 3:
                    raise OSError(errno.ENOSPC, "No space left on device")
                yield row

        return original(some_then_full(), *args)

    monkeypatch.setattr(batch_rows, writer, fill_the_disk)
    out = tmp_path / f"run.{fmt}"
    with ResultStore() as store, pytest.raises(ExportError) as info:
        export_rows(store.iter_rows(run_id), store.run(run_id).class_ids, out, fmt)
    message = str(info.value)
    assert str(out) in message and "disk is full" in message and "safe in the database" in message
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial"))  # no truncated file left behind
    with ResultStore() as store:
        assert store.integrity_ok()
        assert store.row_count(run_id) == len(rows)
        assert store.run(run_id).status == "completed"


FORMULA_NAMES = [
    '=HYPERLINK("http:evil.example").png',
    "+cmd.png",
    "-2+3.png",
    "@SUM(A1).png",
    "\tTAB.png",
    "\rCR.png",
]


def test_csv_cells_that_start_a_formula_are_escaped(tmp_path, test_classifier, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative run: the path cell is the bare name
    for k, name in enumerate(FORMULA_NAMES):
        write_png(tmp_path / name, seed=k)
    rows = list(classify_paths(FORMULA_NAMES, test_classifier))
    assert all(r.ok for r in rows)
    out = tmp_path / "run.csv"
    export_rows(rows, CLASSES, out, "csv")
    with open(out, newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    assert [r["path"] for r in records] == ["'" + name for name in FORMULA_NAMES]
    for record in records:  # numbers stay numbers
        assert 0.0 <= float(record["p_normal"]) <= 1.0 and float(record["seconds"]) >= 0
    error = ResultRow(Path("x.png"), "@model 1", error="-1 bytes?")
    buffer = io.StringIO()
    write_csv([error], CLASSES, buffer)
    header, cells = list(csv.reader(io.StringIO(buffer.getvalue())))
    record = dict(zip(header, cells, strict=True))
    assert record["model"] == "'@model 1" and record["error"] == "'-1 bytes?"


KILLED_EXPORT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from xraydesk.batch.rows import ResultRow, export_rows

    def rows():
        for k in range(1000):
            if k == 5:
                print("writing", flush=True)
                time.sleep(60)  # killed here, mid-export
            yield ResultRow(Path(f"img{k}.png"), "m 1", error="x")

    export_rows(rows(), ["a"], Path(sys.argv[1]), "csv")
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_partial_files_of_killed_exports_do_not_pile_up(tmp_path):
    script = tmp_path / "export.py"
    script.write_text(KILLED_EXPORT)
    exports = tmp_path / "exports"
    for name in ("a.csv", "b.csv"):
        child = subprocess.Popen(
            [sys.executable, str(script), str(exports / name)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        # the killed export's side file stays; the one killed before it was removed
        assert [p.name.split(".")[1] for p in exports.glob(".*partial")] == [name[0]]
    rows = [ResultRow(Path("x.png"), "m 1", error="x")]
    assert export_rows(rows, ["a"], exports / "c.csv", "csv") == 1
    assert sorted(p.name for p in exports.iterdir()) == ["c.csv"]
