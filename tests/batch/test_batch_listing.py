"""A batch run lists each folder once: its walk and the count for the time left share
the listings (``imaging.discover.SharedListings``)."""

from __future__ import annotations

from pathlib import Path

from tests.batch_helpers import make_folder, write_png
from tests.listings import count_listings
from xraydesk.batch.run import BatchOptions, BatchRun


def test_a_run_and_its_count_list_each_folder_once(tmp_path: Path, test_classifier, monkeypatch):
    root = make_folder(tmp_path / "films" / "study").parent
    for k in range(3):
        write_png(root / f"series{k}" / "img.png", seed=50 + k)
    folders = {str(root)} | {str(p) for p in root.rglob("*") if p.is_dir()}
    listed = count_listings(monkeypatch)
    options = BatchOptions(recursive=True, batch_size=4, db_path=tmp_path / "results.sqlite")
    assert options.count_total  # the count runs beside the walk
    batch = BatchRun([root], test_classifier, options)
    rows = list(batch.rows())
    assert len(rows) == 8 + 3  # make_folder's 8 rows and one film per series
    assert {path: n for path, n in listed.items() if path in folders} == dict.fromkeys(folders, 1)
