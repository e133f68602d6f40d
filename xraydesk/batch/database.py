"""The results database: every batch run and every row it produced, in SQLite.

Why SQLite in WAL mode: rows are committed in small groups while the run goes on, so a
run killed at any moment (kill -9, power cut of the app, a crash) keeps every row it
had reported; readers (the GUI's list of past runs, the skip lookups of the decode
threads) never block the writer. ``synchronous=NORMAL`` keeps commits cheap: in WAL
mode a committed transaction survives the process dying, only an OS crash can lose the
last ones.

A file is "already classified" by a model when a row with its sha256 and that model's
key (name, version and weights hash) exists without an error. Re-running a folder reuses
such rows instead of classifying the file again.

Text columns hold valid UTF-8 (``rows.display_text``): a file name that is not UTF-8
(Linux names are any bytes) is stored as readable text with ``\\xNN`` escapes in ``path``
and, so that it comes back exactly, as its bytes in ``raw_path`` (NULL for every other
name). ``raw_path`` was added to schema 1 in place: older versions ignore it.

``warnings`` holds a row's reasons not to trust it as JSON
``[{"code": ..., "message": ...}]`` (``[]``: checked, nothing found). It was also added in
place; rows from before it have NULL there (never checked), so they are not reused: a
re-run classifies those files again and checks them.

``indeterminate`` is 1 for a row classified without a class named (the one verdict's
``is_indeterminate``: the operating rule, or the input gate): ``prediction`` NULL,
``error`` NULL, ``probabilities`` those of the answer withheld. 0 for every other row.
Added in place too (``stored_columns.add_column``); rows from before it have NULL
there: they are not reused (a gate-flagged film then still had a class), and read back
as indeterminate when they have neither a class nor an error.

``finding`` is what an indeterminate row still finds (``ResultRow.finding``: the id of
the model card's class group its rule accepts), ``''`` when it finds nothing or names a
class. Added in place too; an indeterminate row from before it (NULL) is not reused, so
a re-run gives it its finding.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from xraydesk import paths
from xraydesk.batch.rows import ResultRow, display_text
from xraydesk.batch.run_state import RunCounts, RunStatus, run_status
from xraydesk.batch.stored_columns import (
    add_column,
    raw_path,
    stored_indeterminate,
    stored_path,
    warnings_from,
    warnings_json,
)
from xraydesk.errors import XRayDeskError
from xraydesk.files import process_alive
from xraydesk.model.card import ModelCard
from xraydesk.model.site_profile import site_profile_key
from xraydesk.sqlite_threads import SqliteStore

DB_NAME = "results.sqlite"
SCHEMA_VERSION = 1

RUNNING, COMPLETED, CANCELLED, FAILED, INTERRUPTED = (
    RunStatus.RUNNING,
    RunStatus.COMPLETED,
    RunStatus.CANCELLED,
    RunStatus.FAILED,
    RunStatus.INTERRUPTED,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder TEXT NOT NULL,            -- the first path given, absolute
    inputs TEXT NOT NULL,            -- JSON list of every path given
    recursive INTEGER NOT NULL,
    model TEXT NOT NULL,             -- "name version", as users see it
    model_key TEXT NOT NULL,         -- what "the same model" means for skipping
    classes TEXT NOT NULL,           -- JSON [[id, display name], ...] in the model's order
    started TEXT NOT NULL,           -- ISO 8601 UTC
    finished TEXT,
    heartbeat REAL,                  -- time.time() of the last commit
    status TEXT NOT NULL,
    pid INTEGER,
    total INTEGER,                   -- images found (NULL while still counting)
    classified INTEGER NOT NULL DEFAULT 0,
    reused INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    not_images INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0,
    message TEXT
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,            -- position in the run (the output order)
    path TEXT NOT NULL,
    sha256 TEXT,
    model_key TEXT NOT NULL,
    prediction TEXT,
    probabilities TEXT,              -- JSON {class id: probability}
    error TEXT,
    seconds REAL NOT NULL DEFAULT 0,
    classified_at TEXT,
    reused INTEGER NOT NULL DEFAULT 0,
    raw_path BLOB,                   -- the name's bytes when it is not UTF-8, else NULL
    warnings TEXT,                   -- JSON [{code, message}]; NULL: made before checks
    indeterminate INTEGER,           -- 1: classified, no class named; NULL: made before it
    finding TEXT                     -- class group id of an indeterminate answer, else ''
);
CREATE INDEX IF NOT EXISTS results_by_run ON results(run_id, seq);
CREATE INDEX IF NOT EXISTS results_by_content ON results(model_key, sha256)
    WHERE error IS NULL AND reused = 0;
"""


class StoreError(XRayDeskError):
    """The results database could not be opened or written."""


def default_db_path() -> Path:
    return paths.data_dir() / DB_NAME


def model_key(card: ModelCard) -> str:
    """Name, version and weights hash: a retrained model with the same name is not 'the same'.
    A card without an integrity record is not the same either: its rows carry the
    ``card_unverified`` warning, and rows made under a verified card must not be reused
    without it."""
    unverified = "" if card.verified else "~unverified"
    key = f"{card.name}@{card.version}#{card.weights_sha256 or '-'}{unverified}"
    return key + site_profile_key(card)  # a site profile changes the verdicts too


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunInfo(RunCounts):
    """One past or current run, as the list of past runs shows it (its counts: ``RunCounts``)."""

    id: int
    folder: str
    inputs: list[str]
    recursive: bool
    model: str
    model_key: str
    classes: list[tuple[str, str]]  # (id, display name) in the model's order
    started: str
    finished: str | None
    status: RunStatus | str  # text only when a newer XRayDesk wrote a status unknown here
    message: str | None

    @property
    def class_ids(self) -> list[str]:
        return [cid for cid, _ in self.classes]

    @property
    def display_names(self) -> dict[str, str]:
        return dict(self.classes)

    @property
    def rows_done(self) -> int:
        return self.done


# Runs this process is driving right now: a "running" row of ours not in here was abandoned.
_ACTIVE_RUNS: set[int] = set()
_ACTIVE_LOCK = threading.Lock()
_STALE_AFTER_S = 300.0  # where liveness cannot be asked (Windows): no commit for 5 minutes


class ResultStore(SqliteStore):
    """Runs and rows in ``results.sqlite``. One writer connection (the thread that drives a
    run), plus a private read connection per thread for lookups (``known_row``)."""

    error = StoreError
    what = "the results database"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(Path(path) if path is not None else default_db_path())

    def _create(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: the results database was written by a newer XRayDesk "
                f"(schema {version}); update XRayDesk or move the file away"
            )
        conn.executescript(_SCHEMA)
        add_column(conn, "raw_path", "BLOB")
        add_column(conn, "warnings", "TEXT")
        add_column(conn, "indeterminate", "INTEGER")
        add_column(conn, "finding", "TEXT")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.commit()

    # -- writing a run --------------------------------------------------------------------
    def start_run(
        self, inputs: list[str], recursive: bool, card: ModelCard, total: int | None = None
    ) -> int:
        classes = [[c.id, c.name] for c in card.classes]
        try:
            conn = self._connection()
            cur = conn.execute(
                "INSERT INTO runs (folder, inputs, recursive, model, model_key, classes, started,"
                " heartbeat, status, pid, total) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    display_text(inputs[0]) if inputs else "",
                    json.dumps(inputs),  # ASCII with escapes: any name round-trips
                    int(recursive),
                    card.label,
                    model_key(card),
                    json.dumps(classes),
                    utc_now(),
                    time.time(),
                    RUNNING,
                    os.getpid(),
                    total,
                ),
            )
            conn.commit()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot record a new batch run ({exc})") from exc
        run_id = int(cur.lastrowid or 0)
        with _ACTIVE_LOCK:
            _ACTIVE_RUNS.add(run_id)
        return run_id

    def add_rows(self, run_id: int, key: str, first_seq: int, rows: list[ResultRow]) -> None:
        """Insert rows (not committed yet: ``commit`` makes them durable)."""
        self._connection().executemany(
            "INSERT INTO results (run_id, seq, path, sha256, model_key, prediction,"
            " probabilities, error, seconds, classified_at, reused, raw_path, warnings,"
            " indeterminate, finding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    run_id,
                    first_seq + k,
                    display_text(str(row.path)),
                    row.content_hash,
                    key,
                    row.prediction,
                    json.dumps(row.probabilities) if row.probabilities is not None else None,
                    None if row.error is None else display_text(row.error),
                    row.seconds,
                    row.classified_at,
                    int(row.reused),
                    raw_path(row.path),
                    warnings_json(row.warnings),
                    int(row.indeterminate),
                    row.finding or "",
                )
                for k, row in enumerate(rows)
            ],
        )

    def update_counts(self, run_id: int, **counts: int | None) -> None:
        allowed = {"total", "classified", "reused", "failed", "not_images", "hidden"}
        if not counts:
            return
        if set(counts) - allowed:
            raise ValueError(f"unknown counts {sorted(set(counts) - allowed)}")
        assignments = ", ".join(f"{name} = ?" for name in counts)
        self._connection().execute(
            f"UPDATE runs SET {assignments}, heartbeat = ? WHERE id = ?",
            (*counts.values(), time.time(), run_id),
        )

    def commit(self) -> None:
        self._connection().commit()

    def finish_run(self, run_id: int, status: RunStatus, message: str | None = None) -> None:
        """Record how the run ended; pending rows are committed with it."""
        conn = self._connection()
        try:
            conn.execute(
                "UPDATE runs SET status = ?, finished = ?, message = ?, heartbeat = ? WHERE id = ?",
                (
                    status,
                    utc_now(),
                    None if message is None else display_text(message),
                    time.time(),
                    run_id,
                ),
            )
            conn.commit()
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE_RUNS.discard(run_id)

    def rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._connection().rollback()

    # -- reading --------------------------------------------------------------------------
    def known_row(self, key: str, sha256: str) -> ResultRow | None:
        """The latest successful row for this content and model, or None (any thread)."""
        record = (
            self._connection()
            .execute(
                "SELECT path, raw_path, prediction, probabilities, seconds, classified_at,"
                " warnings, finding FROM results"
                " WHERE model_key = ? AND sha256 = ? AND error IS NULL AND reused = 0"
                " AND warnings IS NOT NULL AND indeterminate IS NOT NULL"
                " AND (finding IS NOT NULL OR indeterminate = 0)"
                " ORDER BY id DESC LIMIT 1",
                (key, sha256),
            )
            .fetchone()
        )
        if record is None:
            return None
        path, raw, prediction, probabilities, seconds, classified_at, warnings, finding = record
        return ResultRow(
            path=stored_path(path, raw),
            model="",
            prediction=prediction,
            # prediction None without an error: indeterminate (only such rows are reused)
            probabilities=json.loads(probabilities) if probabilities is not None else None,
            indeterminate=prediction is None,
            finding=finding or None,
            content_hash=sha256,
            seconds=float(seconds or 0.0),
            classified_at=classified_at,
            reused=True,
            warnings=warnings_from(warnings),
        )

    def runs(self, limit: int | None = None) -> list[RunInfo]:
        """Past and current runs, newest first."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC"
        params: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [_run_info(r) for r in self._connection().execute(sql, params).fetchall()]

    def run(self, run_id: int) -> RunInfo:
        record = (
            self._connection()
            .execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
            .fetchone()
        )
        if record is None:
            raise StoreError(f"there is no batch run {run_id} in {self.path}")
        return _run_info(record)

    def iter_rows(self, run_id: int, chunk: int = 500) -> Iterator[ResultRow]:
        """A run's rows in their order, read in chunks (a run of any size, bounded memory)."""
        model = self.run(run_id).model
        first = 0
        while True:
            rows = self.rows_at(run_id, first, chunk, model)
            if not rows:
                return
            yield from rows
            first += len(rows)

    def rows_at(self, run_id: int, first: int, count: int, model: str) -> list[ResultRow]:
        """Up to ``count`` rows of a run from position ``first`` (its ``seq``) on, in
        order: what a table shows of a run of any size, read when it is shown."""
        records = (
            self._connection()
            .execute(
                "SELECT path, raw_path, sha256, prediction, probabilities, error, seconds,"
                " classified_at, reused, warnings, indeterminate, finding FROM results"
                " WHERE run_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (run_id, first, count),
            )
            .fetchall()
        )
        return [_stored_row(record, model) for record in records]

    def row_count(self, run_id: int) -> int:
        record = (
            self._connection()
            .execute("SELECT COUNT(*) FROM results WHERE run_id = ?", (run_id,))
            .fetchone()
        )
        return int(record[0])

    def integrity_ok(self) -> bool:
        record = self._connection().execute("PRAGMA integrity_check").fetchone()
        return record is not None and record[0] == "ok"


def _stored_row(record: tuple, model: str) -> ResultRow:
    path, raw, sha, prediction, probs, error, seconds, at, reused, warnings, flag, finding = record
    return ResultRow(
        path=stored_path(path, raw),
        model=model,
        prediction=prediction,
        probabilities=json.loads(probs) if probs is not None else None,
        error=error,
        content_hash=sha,
        seconds=float(seconds or 0.0),
        classified_at=at,
        reused=bool(reused),
        warnings=warnings_from(warnings),
        indeterminate=stored_indeterminate(flag, prediction, error),
        finding=finding or None,
    )


_RUN_COLUMNS = (
    "id, folder, inputs, recursive, model, model_key, classes, started, finished, status,"
    " pid, heartbeat, total, classified, reused, failed, not_images, hidden, message"
)


def _run_info(record: tuple) -> RunInfo:
    (
        run_id,
        folder,
        inputs,
        recursive,
        model,
        key,
        classes,
        started,
        finished,
        status,
        pid,
        heartbeat,
        total,
        classified,
        reused,
        failed,
        not_images,
        hidden,
        message,
    ) = record
    status = run_status(status)
    if status == RUNNING and not _still_running(run_id, pid, heartbeat):
        status = INTERRUPTED
    return RunInfo(
        id=run_id,
        folder=folder,
        inputs=json.loads(inputs),
        recursive=bool(recursive),
        model=model,
        model_key=key,
        classes=[(cid, name) for cid, name in json.loads(classes)],
        started=started,
        finished=finished,
        status=status,
        total=total,
        classified=classified,
        reused=reused,
        failed=failed,
        not_images=not_images,
        hidden=hidden,
        message=message,
    )


def _still_running(run_id: int, pid: int | None, heartbeat: float | None) -> bool:
    """Whether a run recorded as running is really going on (it may have been killed)."""
    if pid == os.getpid():
        with _ACTIVE_LOCK:
            return run_id in _ACTIVE_RUNS
    alive = process_alive(pid) if pid else None
    if alive is not None:
        return alive
    # The OS cannot say (Windows, or no pid recorded): judge by the last commit instead.
    return heartbeat is not None and time.time() - heartbeat < _STALE_AFTER_S
