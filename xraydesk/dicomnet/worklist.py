"""The incoming worklist: every DICOM object the node received and what the model said.

It lives in the results database (``results.sqlite``, beside the batch runs) in its own
table, written only by this module. WAL mode as in ``batch.database``: the node commits a
row before anything shows it (the GUI, the CLI, a callback), so a killed node never loses
a row it reported, and readers never block the writer.

Schema (``dicom_worklist``, one row per SOP Instance UID; a re-sent instance replaces
its row)::

    id            INTEGER PRIMARY KEY
    received_at   TEXT     ISO 8601 UTC, when the C-STORE request arrived
    calling_ae    TEXT     the sender's calling AE title
    study_uid, series_uid, sop_uid (UNIQUE), sop_class_uid   TEXT
    modality, body_part, study_date, study_description, accession   TEXT
    patient_id, patient_name   TEXT   identifying: shown in the app, never logged
    path          TEXT     the stored file (NULL when not stored, see status)
    status        TEXT     received | classified | failed | skipped
    model         TEXT     "name version" that classified it
    prediction    TEXT     class id (NULL when indeterminate or failed)
    indeterminate INTEGER  1: classified, no class named (the one verdict: the operating
                           rule or the input gate); probabilities are the withheld answer's
    probabilities TEXT     JSON {class id: probability}
    warnings      TEXT     JSON list of strings (the verdict's warnings; with the SR, reader notes)
    error         TEXT     why it failed or was skipped
    classified_at TEXT     ISO 8601 UTC
    seconds       REAL     first byte of the association to this row (node time)
    results       TEXT     where the SR and Secondary Capture went ("sent to pacs", ...)
    finding       TEXT     what an indeterminate answer still finds: the model card's class
                           group its rule accepts ("pneumonia"); NULL on other rows

``indeterminate`` and ``finding`` were added in place (a table made before them gains
them when opened); its rows have NULL there and read back as indeterminate when
classified without a class.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from xraydesk.batch.database import default_db_path, utc_now
from xraydesk.errors import XRayDeskError
from xraydesk.sqlite_threads import SqliteStore

TABLE = "dicom_worklist"


class WorkStatus(StrEnum):
    """A received instance's ``status`` as stored in the worklist table."""

    RECEIVED = "received"  # stored, waiting to be classified
    CLASSIFIED = "classified"
    FAILED = "failed"
    SKIPPED = "skipped"  # not a chest radiograph the model reads (or not stored)


RECEIVED, CLASSIFIED, FAILED, SKIPPED = (
    WorkStatus.RECEIVED,
    WorkStatus.CLASSIFIED,
    WorkStatus.FAILED,
    WorkStatus.SKIPPED,
)


def work_status(text: str) -> WorkStatus | str:
    """The ``WorkStatus`` of a stored status; one this version does not know stays text."""
    try:
        return WorkStatus(text)
    except ValueError:
        return text


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    calling_ae TEXT,
    study_uid TEXT,
    series_uid TEXT,
    sop_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT,
    modality TEXT,
    body_part TEXT,
    study_date TEXT,
    study_description TEXT,
    accession TEXT,
    patient_id TEXT,
    patient_name TEXT,
    path TEXT,
    status TEXT NOT NULL,
    model TEXT,
    prediction TEXT,
    probabilities TEXT,
    warnings TEXT,
    error TEXT,
    classified_at TEXT,
    seconds REAL,
    results TEXT,
    indeterminate INTEGER,
    finding TEXT
);
CREATE INDEX IF NOT EXISTS {TABLE}_by_status ON {TABLE}(status);
"""

_COLUMNS = (
    "id, received_at, calling_ae, study_uid, series_uid, sop_uid, sop_class_uid, modality,"
    " body_part, study_date, study_description, accession, patient_id, patient_name, path,"
    " status, model, prediction, probabilities, warnings, error, classified_at, seconds, results,"
    " indeterminate, finding"
)


class WorklistError(XRayDeskError):
    """The worklist table could not be opened or written."""


@dataclass
class WorkItem:
    """One received object. ``patient_*`` are identifying: never put them in a log line."""

    sop_uid: str
    received_at: str = ""
    calling_ae: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_class_uid: str | None = None
    modality: str | None = None
    body_part: str | None = None
    study_date: str | None = None
    study_description: str | None = None
    accession: str | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    path: Path | None = None
    status: WorkStatus | str = RECEIVED
    model: str | None = None
    prediction: str | None = None
    probabilities: dict[str, float] | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    classified_at: str | None = None
    seconds: float | None = None
    results: str | None = None
    id: int | None = None
    indeterminate: bool = False  # classified, no class named (``prediction`` None)
    finding: str | None = None  # what an indeterminate answer still finds (``Verdict.finding``)

    def __repr__(self) -> str:  # never leak identifiers into logs or tracebacks
        return (
            f"WorkItem(id={self.id}, status={str(self.status)!r}, prediction={self.prediction!r})"
        )


class Worklist(SqliteStore):
    """The ``dicom_worklist`` table. One connection per thread (associations run in their
    own threads); each write is committed before it returns."""

    error = WorklistError
    what = "the DICOM worklist"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(Path(path) if path is not None else default_db_path())

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
        for name, kind in (("indeterminate", "INTEGER"), ("finding", "TEXT")):
            if name not in columns:  # a worklist made before the column
                with contextlib.suppress(sqlite3.OperationalError):  # another process added it
                    conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}")
        conn.commit()

    # -- writing ---------------------------------------------------------------------------
    def add(self, item: WorkItem) -> int:
        """Insert (or replace, for a re-sent instance) and commit; returns the row id."""
        item.received_at = item.received_at or utc_now()
        values = (
            item.received_at,
            item.calling_ae,
            item.study_uid,
            item.series_uid,
            item.sop_uid,
            item.sop_class_uid,
            item.modality,
            item.body_part,
            item.study_date,
            item.study_description,
            item.accession,
            item.patient_id,
            item.patient_name,
            str(item.path) if item.path else None,
            item.status,
            item.error,
        )
        conn = self._connection()
        try:
            conn.execute(
                f"INSERT INTO {TABLE} (received_at, calling_ae, study_uid, series_uid, sop_uid,"
                " sop_class_uid, modality, body_part, study_date, study_description, accession,"
                " patient_id, patient_name, path, status, error)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(sop_uid) DO UPDATE SET received_at=excluded.received_at,"
                " calling_ae=excluded.calling_ae, study_uid=excluded.study_uid,"
                " series_uid=excluded.series_uid, sop_class_uid=excluded.sop_class_uid,"
                " modality=excluded.modality, body_part=excluded.body_part,"
                " study_date=excluded.study_date, study_description=excluded.study_description,"
                " accession=excluded.accession, patient_id=excluded.patient_id,"
                " patient_name=excluded.patient_name, path=excluded.path, status=excluded.status,"
                " error=excluded.error, model=NULL, prediction=NULL, probabilities=NULL,"
                " warnings=NULL, classified_at=NULL, seconds=NULL, results=NULL,"
                " indeterminate=NULL",
                values,
            )
            record = conn.execute(
                f"SELECT id FROM {TABLE} WHERE sop_uid = ?", (item.sop_uid,)
            ).fetchone()
            conn.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
            raise WorklistError(f"{self.path}: cannot add to the worklist ({exc})") from exc
        item.id = int(record[0])
        return item.id

    def set_result(
        self,
        row_id: int,
        *,
        status: WorkStatus,
        model: str | None,
        prediction: str | None = None,
        probabilities: dict[str, float] | None = None,
        error: str | None = None,
        seconds: float | None = None,
        warnings: list[str] | None = None,
        indeterminate: bool = False,
        finding: str | None = None,
    ) -> None:
        """Record the classification (or its failure) and commit. ``warnings``: the
        verdict's, as the SR words them (``ResultWarning.line``); None keeps them.
        ``indeterminate``: the verdict names no class (``prediction`` None); ``finding``:
        what it still finds (the card's class group id)."""
        conn = self._connection()
        try:
            conn.execute(
                f"UPDATE {TABLE} SET status=?, model=?, prediction=?, probabilities=?, error=?,"
                " classified_at=?, seconds=?, warnings=COALESCE(?, warnings), indeterminate=?,"
                " finding=? WHERE id=?",
                (
                    status,
                    model,
                    prediction,
                    json.dumps(probabilities) if probabilities is not None else None,
                    error,
                    utc_now(),
                    seconds,
                    json.dumps(list(warnings)) if warnings is not None else None,
                    int(indeterminate),
                    finding if indeterminate else None,
                    row_id,
                ),
            )
            conn.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
            raise WorklistError(f"{self.path}: cannot record a result ({exc})") from exc

    def set_results_sent(self, row_id: int, results: str, warnings: list[str]) -> None:
        """Where the SR went and the warnings it carries; none (results not made) keeps
        the verdict's warnings recorded with the result."""
        conn = self._connection()
        conn.execute(
            f"UPDATE {TABLE} SET results=?, warnings=COALESCE(?, warnings) WHERE id=?",
            (results, json.dumps(list(warnings)) if warnings else None, row_id),
        )
        conn.commit()

    # -- reading ---------------------------------------------------------------------------
    def items(self, limit: int | None = None, status: str | None = None) -> list[WorkItem]:
        """Newest first."""
        sql = f"SELECT {_COLUMNS} FROM {TABLE}"
        params: list[object] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_item(r) for r in self._connection().execute(sql, params).fetchall()]

    def iter_pending(self) -> Iterator[WorkItem]:
        """Rows received but not classified (a node stopped before their turn), oldest first."""
        records = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE status = ? ORDER BY id", (RECEIVED,))
            .fetchall()
        )
        for record in records:
            yield _item(record)

    def get(self, row_id: int) -> WorkItem | None:
        record = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = ?", (row_id,))
            .fetchone()
        )
        return _item(record) if record else None

    def count(self, status: str | None = None) -> int:
        if status is None:
            record = self._connection().execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()
        else:
            record = (
                self._connection()
                .execute(f"SELECT COUNT(*) FROM {TABLE} WHERE status = ?", (status,))
                .fetchone()
            )
        return int(record[0])


def _item(record: tuple) -> WorkItem:
    (
        row_id, received_at, calling_ae, study_uid, series_uid, sop_uid, sop_class_uid,
        modality, body_part, study_date, study_description, accession, patient_id,
        patient_name, path, status, model, prediction, probabilities, warnings, error,
        classified_at, seconds, results, indeterminate, finding,
    ) = record  # fmt: skip
    return WorkItem(
        id=row_id,
        received_at=received_at,
        calling_ae=calling_ae,
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        sop_class_uid=sop_class_uid,
        modality=modality,
        body_part=body_part,
        study_date=study_date,
        study_description=study_description,
        accession=accession,
        patient_id=patient_id,
        patient_name=patient_name,
        path=Path(path) if path else None,
        status=work_status(status),
        model=model,
        prediction=prediction,
        probabilities=json.loads(probabilities) if probabilities else None,
        warnings=json.loads(warnings) if warnings else [],
        error=error,
        classified_at=classified_at,
        seconds=seconds,
        results=results,
        indeterminate=(
            bool(indeterminate)
            if indeterminate is not None
            else status == CLASSIFIED and prediction is None and error is None
        ),
        finding=finding,
    )
