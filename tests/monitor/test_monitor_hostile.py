"""Hostile database and baseline paths for ``xraydesk monitor`` (hostile-input sweep):
a named pipe used to block for ever, a folder gave SQLite's bare "disk I/O error"."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from xraydesk.cli import main
from xraydesk.monitor.daily import MonitorError, daily_stats
from xraydesk.monitor.drift import load_baseline

HANG_S = 20.0  # reading a path that is not a file must answer at once


def _answers(call) -> Exception | None:
    """What ``call()`` raised, or None; fails the test if it has not answered in HANG_S (the
    worker is a daemon: a pipe nobody writes to would otherwise hold the run)."""
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(HANG_S)
    assert outcome, "no answer: it blocked on the path"
    return outcome[0]


@pytest.mark.parametrize("kind", ["folder", "pipe"])
@pytest.mark.parametrize(
    ("name", "read", "says"),
    [
        ("results.sqlite", daily_stats, ": is a "),
        ("baseline.json", load_baseline, ": cannot read the baseline (is a "),
    ],
)
def test_path_that_is_not_a_file(tmp_path: Path, kind: str, name: str, read, says: str) -> None:
    path = tmp_path / name
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    error = _answers(lambda: read(path))
    assert isinstance(error, MonitorError)
    cause = "folder, not a file" if kind == "folder" else "named pipe, not a file"
    assert str(error).startswith(f"{path}{says}{cause}")


def test_baseline_with_a_garbled_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text('{"format": "xraydesk-monitor-baseline/1", "images": "x"}')
    with pytest.raises(MonitorError, match=r"baseline.json: the baseline has a malformed field"):
        load_baseline(path)
    path.write_text('{"format": "xraydesk-monitor-baseline/1"}')
    with pytest.raises(MonitorError, match=r"baseline.json: the baseline lacks the field 'images'"):
        load_baseline(path)


def test_a_database_path_that_does_not_exist_is_said(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "typo.sqlite"
    assert main(["monitor", "--db", str(missing)]) == 0
    out = capsys.readouterr().out
    assert f"({missing} does not exist: nothing was classified into it)" in out
    assert not missing.exists()
