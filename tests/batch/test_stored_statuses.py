"""Run and worklist statuses are StrEnums whose values are the strings in the database: a
status written is the same text as before the enums, and text written by an older version
reads back as the enum member."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from xraydesk.batch.database import ResultStore
from xraydesk.batch.run_state import RunStatus
from xraydesk.dicomnet.worklist import TABLE, WorkItem, Worklist, WorkStatus
from xraydesk.model.card import ClassInfo, ModelCard
from xraydesk.model.preprocessing import Preprocessing

# The texts the databases of every earlier version hold: the enums must keep them.
RUN_TEXTS = {"running", "completed", "cancelled", "failed", "interrupted"}
WORK_TEXTS = {"received", "classified", "failed", "skipped"}


def _card() -> ModelCard:
    return ModelCard(
        name="m",
        version="1",
        classes=[ClassInfo("a", "A"), ClassInfo("b", "B")],
        preprocessing=Preprocessing(size=32),
        weights_file="m.safetensors",
        weights_sha256="0" * 64,
    )


def test_enum_values_are_the_stored_texts() -> None:
    assert {s.value for s in RunStatus} == RUN_TEXTS
    assert {s.value for s in WorkStatus} == WORK_TEXTS
    assert json.dumps({"status": RunStatus.COMPLETED}) == '{"status": "completed"}'


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED])
def test_run_status_round_trips_through_the_database(tmp_path: Path, status: RunStatus) -> None:
    db = tmp_path / "results.sqlite"
    with ResultStore(db) as store:
        run_id = store.start_run([str(tmp_path)], False, _card())
        store.finish_run(run_id, status)
        read = store.run(run_id).status
    assert read is status
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    assert type(text) is str and text == status.value


def test_run_status_written_as_text_reads_as_the_enum(tmp_path: Path) -> None:
    """A database an older version wrote (plain text) reads back as members; a status a
    newer version may write stays readable as its text."""
    db = tmp_path / "results.sqlite"
    with ResultStore(db) as store:
        first = store.start_run([str(tmp_path)], False, _card())
        second = store.start_run([str(tmp_path)], False, _card())
        store.finish_run(first, RunStatus.COMPLETED)
        store.finish_run(second, RunStatus.COMPLETED)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = ?", (first,))
        conn.execute("UPDATE runs SET status = 'paused' WHERE id = ?", (second,))
    with ResultStore(db) as store:
        assert store.run(first).status is RunStatus.CANCELLED
        assert store.run(second).status == "paused"


@pytest.mark.parametrize("status", list(WorkStatus))
def test_worklist_status_round_trips_through_the_database(
    tmp_path: Path, status: WorkStatus
) -> None:
    db = tmp_path / "results.sqlite"
    with Worklist(db) as worklist:
        row_id = worklist.add(WorkItem(sop_uid="1.2.3"))
        worklist.set_result(row_id, status=status, model="m 1")
        (item,) = worklist.items()
        assert item.status is status
        assert worklist.count(WorkStatus(status.value)) == 1
        assert f"status={status.value!r}" in repr(item)  # the repr reads as before
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute(f"SELECT status FROM {TABLE}").fetchone()
    assert type(text) is str and text == status.value


def test_training_modes_are_the_strings_cards_and_the_cli_use() -> None:
    from xraydesk.trainer.config import MODES, TrainingMode

    assert MODES == ("quick", "full") and all(type(m) is str for m in MODES)
    assert TrainingMode("full") is TrainingMode.FULL and TrainingMode.QUICK == "quick"


def test_training_stages_are_the_phase_strings_in_run_order() -> None:
    from xraydesk.trainer.progress import PHASES, TrainingStage

    assert PHASES == (
        "checking",
        "splitting",
        "features",
        "head",
        "training",
        "evaluating",
        "saving",
        "done",
    )
    assert [s.value for s in TrainingStage] == list(PHASES)
    assert all(type(p) is str for p in PHASES) and TrainingStage("head") is TrainingStage.HEAD
