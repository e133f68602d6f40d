"""A recorded run's rows read from the results database on demand (``StoredRows``): the
same rows as the run made, in order, with at most ``CHUNKS`` chunks held (issue 28)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.batch_helpers import make_folder
from xraydesk.batch import stored_rows
from xraydesk.batch.database import ResultStore
from xraydesk.batch.rows import ResultRow
from xraydesk.batch.run import BatchOptions, BatchRun
from xraydesk.batch.stored_rows import StoredRows


def _row(k: int) -> ResultRow:
    return ResultRow(path=Path(f"/films/f{k:03d}.png"), model="m 1", prediction="normal",
                     probabilities={"normal": 0.9, "other": 0.1}, content_hash=f"{k:064d}",
                     warnings=[])  # fmt: skip


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "results.sqlite") as opened:
        yield opened


def _start(store: ResultStore, card) -> int:
    return store.start_run(["/films"], False, card)


def test_the_rows_of_a_run_in_its_order(tmp_path, test_classifier):
    folder = make_folder(tmp_path / "study")
    db = tmp_path / "results.sqlite"
    batch = BatchRun([folder], test_classifier, BatchOptions(recursive=True, db_path=db))
    made = list(batch.rows())
    with ResultStore(db) as store:
        rows = StoredRows(store, batch.run_id)
        assert len(rows) == len(made) == 8
        assert [r.path for r in rows] == [r.path for r in made]
        assert [rows[k].prediction for k in range(8)] == [r.prediction for r in made]
        assert rows[-1].path == made[-1].path and rows[1:3][1].path == made[2].path
        assert rows[0].error == made[0].error and rows[0].model == made[0].model
        with pytest.raises(IndexError):
            rows[8]


def test_chunks_held_are_bounded_and_a_growing_run_is_read_again(
    store, test_classifier, monkeypatch
):
    monkeypatch.setattr(stored_rows, "CHUNK", 4)
    monkeypatch.setattr(stored_rows, "CHUNKS", 2)
    run_id = _start(store, test_classifier.card)
    store.add_rows(run_id, "key", 0, [_row(k) for k in range(6)])
    store.commit()
    rows = StoredRows(store, run_id)
    assert len(rows) == 6 and rows[5].path.name == "f005.png"  # a partial chunk read
    store.add_rows(run_id, "key", 6, [_row(k) for k in range(6, 30)])
    store.commit()
    rows.grow(24)
    assert [r.path.name for r in rows] == [f"f{k:03d}.png" for k in range(30)]
    for k in range(30):  # random access across every chunk: at most CHUNKS kept
        assert rows[(k * 7) % 30].path.name == f"f{(k * 7) % 30:03d}.png"
        assert len(rows._chunks) <= 2


def test_rows_committed_but_not_yet_counted_stay_out(store, test_classifier):
    run_id = _start(store, test_classifier.card)
    store.add_rows(run_id, "key", 0, [_row(k) for k in range(5)])
    store.commit()
    rows = StoredRows(store, run_id, count=3)  # the table has been sent 3 rows so far
    assert len(rows) == 3 and [r.path.name for r in rows] == ["f000.png", "f001.png", "f002.png"]
    rows.grow(2)
    assert rows[4].path.name == "f004.png"
