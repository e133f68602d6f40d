"""A damaged ``results.sqlite`` (a crash on a network share, a disk error) is named with
what to do: every store that opens it (the results, the DICOM worklist) and the monitor
say the file is damaged and that moving it aside lets XRayDesk start a new one, instead
of only SQLite's "file is not a database". Other errors (a locked file) get no such
advice. Found by a hostile-input sweep."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from xraydesk.batch.database import ResultStore, StoreError
from xraydesk.dicomnet.worklist import Worklist, WorklistError
from xraydesk.monitor.daily import MonitorError, daily_stats
from xraydesk.sqlite_threads import damaged_remedy

REMEDY = "the file is damaged: rename or move it"


def _garbage(path: Path, keep: bytes = b"") -> Path:
    path.write_bytes(keep + bytes(range(256)) * 64)
    return path


def _truncated(tmp_path: Path) -> Path:
    good = tmp_path / "good.sqlite"
    with ResultStore(good):
        pass
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(good.read_bytes()[:4096] + b"\xff" * 8192)
    return cut


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_every_opener_names_the_remedy(tmp_path: Path, damage: str) -> None:
    path = _garbage(tmp_path / "results.sqlite") if damage == "garbage" else _truncated(tmp_path)
    for opener, error in ((ResultStore, StoreError), (Worklist, WorklistError)):
        with pytest.raises(error) as err:
            opener(path).close()
        assert str(path) in str(err.value) and REMEDY in str(err.value)
    with pytest.raises(MonitorError) as err:
        daily_stats(path)
    assert REMEDY in str(err.value)


def test_other_errors_get_no_remedy() -> None:
    assert damaged_remedy(sqlite3.OperationalError("database is locked")) == ""
    assert damaged_remedy(OSError("No space left on device")) == ""
    assert REMEDY in damaged_remedy(sqlite3.DatabaseError("file is not a database"))
