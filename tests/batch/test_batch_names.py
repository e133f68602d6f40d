"""A file or folder name that is not UTF-8 (Linux names are any bytes) is classified,
stored so that it comes back exactly, and exported as readable text (issue 18 #2)."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys

import pytest

from tests.real_films import write_real_film
from xraydesk.batch.database import ResultStore
from xraydesk.batch.rows import display_text, export_rows
from xraydesk.batch.run import BatchOptions, BatchRun

CLASSES = ["normal", "pneumonia", "covid19"]


def test_display_text_escapes_only_what_is_not_utf8():
    assert display_text("caf\u00e9.png") == "caf\u00e9.png"
    assert display_text(os.fsdecode(b"caf\xe9.png")) == "caf\\xe9.png"
    assert display_text("odd\ud800") == "odd\\ud800"  # a lone surrogate of any other kind


@pytest.mark.skipif(sys.platform != "linux", reason="Linux file names are any bytes")
def test_non_utf8_names_are_classified_stored_and_exported(tmp_path, test_classifier, shared_data):
    folder = tmp_path / os.fsdecode(b"caf\xe9")  # Latin-1 folder name
    # Real chest films: the gate withholds the class (and the heat map) of noise pictures.
    good = write_real_film(shared_data, folder / "good.png", index=0)
    odd = write_real_film(shared_data, folder / os.fsdecode(b"bad\xff.png"), index=1)
    cams = tmp_path / "cams"
    batch = BatchRun([folder], test_classifier, BatchOptions(cam_dir=cams))
    rows = list(batch.rows())
    assert [r.path for r in rows] == [odd, good]
    assert all(r.ok for r in rows), [r.error for r in rows]
    assert batch.summary.status == "completed" and batch.summary.classified == 2
    assert len(list(cams.iterdir())) == 2
    with ResultStore() as store:
        info = store.run(batch.run_id)
        assert info.inputs == [str(folder)]  # round-trips: the run can be repeated
        assert info.folder == str(tmp_path / "caf\\xe9")  # text for people
        stored = list(store.iter_rows(batch.run_id))
        assert [r.path for r in stored] == [odd, good]  # the exact name comes back
        shown = [p for (p,) in store._connection().execute("SELECT path FROM results")]
        assert shown[0].endswith("caf\\xe9/bad\\xff.png")  # display-safe text column
    out = tmp_path / "run.csv"
    assert export_rows(stored, CLASSES, out, "csv") == 2
    with open(out, newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    assert records[0]["path"].endswith("caf\\xe9/bad\\xff.png")
    for fmt in ("json", "jsonl"):  # JSON escapes the name; it decodes to the same str
        export_rows(stored, CLASSES, tmp_path / f"run.{fmt}", fmt)
    objects = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert [o["path"] for o in objects] == [str(odd), str(good)]


def test_a_database_from_before_raw_path_gains_the_column(tmp_path):
    db = tmp_path / "results.sqlite"
    ResultStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE results DROP COLUMN raw_path")  # as schema 1 first shipped
    conn.commit()
    conn.close()
    with ResultStore(db) as store:
        columns = [row[1] for row in store._connection().execute("PRAGMA table_info(results)")]
    assert columns[-1] == "raw_path"
