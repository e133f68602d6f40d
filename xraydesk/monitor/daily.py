"""Per-day figures of the results database: what ``xraydesk monitor`` prints, the node's
metrics endpoint serves and the drift check compares.

Why computed on read: every batch row (``results``) and every worklist row
(``dicom_worklist``) is already committed with its date, class, probabilities, warnings
and time, so the day's figures are SQL aggregates over them, never a second copy that
could disagree. The database is opened read-only: monitoring never writes it, never
takes the writer's lock and never creates a table.

Per day (UTC, the date of ``classified_at``) and model:

- ``images``: rows with a result: a batch row classified in that run (rows reused from
  an earlier run are not counted again) or a worklist row ``classified`` or ``failed``;
- ``classes``: images per predicted class;
- ``indeterminate``: images given no class (withheld: the verdict's error, a failed
  row) or marked indeterminate where a row records that (an ``indeterminate`` column,
  when the database has one);
- ``warnings``: images per warning code (``trust.codes``; another text is not counted);
- ``confidence``: the mean probability of the predicted class;
- ``latency``: the mean ``seconds`` of a row (batch: the file's share of decoding and
  its batch; node: first byte of the association to the committed row).

No patient identifier is read: the worklist's identifying columns are never selected.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from xraydesk.errors import XRayDeskError
from xraydesk.files import non_file_kind
from xraydesk.sqlite_threads import damaged_remedy
from xraydesk.trust.codes import OUT_OF_DISTRIBUTION, WARNING_CODES


class MonitorError(XRayDeskError):
    """The results database could not be read for monitoring."""


@dataclass
class DayStats:
    """The figures of one day and one model (or of a period, see ``merge``)."""

    day: str  # YYYY-MM-DD (UTC); a period's first..last day after ``merge``
    model: str
    images: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    indeterminate: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    confidence_sum: float = 0.0
    confidence_n: int = 0
    latency_sum: float = 0.0
    latency_n: int = 0

    @property
    def answered(self) -> int:
        """Images given a class."""
        return sum(self.classes.values())

    @property
    def ood(self) -> int:
        return self.warnings.get(OUT_OF_DISTRIBUTION, 0)

    @property
    def mean_confidence(self) -> float | None:
        return self.confidence_sum / self.confidence_n if self.confidence_n else None

    @property
    def mean_latency(self) -> float | None:
        return self.latency_sum / self.latency_n if self.latency_n else None

    def rate(self, count: int) -> float | None:
        return count / self.images if self.images else None

    def add(self, other: DayStats) -> None:
        self.images += other.images
        self.indeterminate += other.indeterminate
        for cls, n in other.classes.items():
            self.classes[cls] = self.classes.get(cls, 0) + n
        for code, n in other.warnings.items():
            self.warnings[code] = self.warnings.get(code, 0) + n
        self.confidence_sum += other.confidence_sum
        self.confidence_n += other.confidence_n
        self.latency_sum += other.latency_sum
        self.latency_n += other.latency_n


def merge(days: Iterable[DayStats], model: str, label: str = "") -> DayStats:
    """One model's days added up (a period's figures)."""
    total = DayStats(day=label, model=model)
    for stats in days:
        if stats.model == model:
            total.add(stats)
    return total


def models_of(days: Iterable[DayStats]) -> list[str]:
    """The models, most images first."""
    counts: dict[str, int] = {}
    for stats in days:
        counts[stats.model] = counts.get(stats.model, 0) + stats.images
    return sorted(counts, key=lambda m: (-counts[m], m))


def _unreadable(db_path: Path, verb: str, exc: sqlite3.Error) -> MonitorError:
    """The message for a database that could not be opened or read, with the remedy for a
    damaged one (``sqlite_threads.damaged_remedy``)."""
    return MonitorError(
        f"{db_path}: cannot {verb} the results database ({exc}){damaged_remedy(exc)}"
    )


def not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be opened as a file (a folder, a named pipe...), or None. A
    named pipe would block the reader for ever, a folder gives SQLite's "disk I/O error"."""
    kind = non_file_kind(path)
    return None if kind is None else f"is {kind}, not a file"


def daily_stats(
    db_path: Path, since: date | None = None, until: date | None = None
) -> list[DayStats]:
    """Every (day, model) of the database between ``since`` and ``until`` (inclusive,
    None: open), oldest day first. A database that does not exist yet has no days."""
    if not db_path.exists():
        return []
    cause = not_a_file(db_path)
    if cause is not None:
        raise MonitorError(f"{db_path}: {cause}; give the results database file (--db FILE)")
    lo = since.isoformat() if since else "0000-00-00"
    hi = until.isoformat() if until else "9999-99-99"
    try:
        conn = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise _unreadable(db_path, "open", exc) from exc
    try:
        found: dict[tuple[str, str], DayStats] = {}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if {"results", "runs"} <= tables:
            _collect(conn, _batch_sql(conn), lo, hi, found)
        if "dicom_worklist" in tables:
            _collect(conn, _worklist_sql(conn), lo, hi, found)
    except sqlite3.Error as exc:
        raise _unreadable(db_path, "read", exc) from exc
    finally:
        conn.close()
    return [found[key] for key in sorted(found)]


# Each source is one query of rows (id, day, model, prediction, confidence, seconds,
# indeterminate, warning code or NULL): a result with k warnings comes k times (once per
# code, in a row), and only the first of them counts as an image.
_CONFIDENCE = "json_extract(probabilities, '$.' || json_quote(prediction))"


def _batch_sql(conn: sqlite3.Connection) -> str:
    flag = "r.indeterminate" if _has_column(conn, "results", "indeterminate") else "0"
    return f"""
    WITH base AS (
        SELECT r.id AS id, substr(COALESCE(r.classified_at, runs.started), 1, 10) AS day,
               runs.model AS model, r.prediction AS prediction, r.probabilities AS probabilities,
               r.seconds AS seconds, r.warnings AS warnings,
               (r.prediction IS NULL OR COALESCE({flag}, 0) != 0) AS indeterminate
        FROM results r JOIN runs ON runs.id = r.run_id
        WHERE r.reused = 0
    )
    SELECT base.id, day, model, prediction, {_CONFIDENCE}, seconds, indeterminate, codes.code
    FROM base LEFT JOIN (
        SELECT base.id AS id, json_extract(j.value, '$.code') AS code
        FROM base, json_each(CASE WHEN json_valid(base.warnings) THEN base.warnings
                                  ELSE '[]' END) AS j
        WHERE j.type = 'object'
    ) AS codes ON codes.id = base.id
    WHERE day BETWEEN ? AND ?
    ORDER BY base.id, codes.code
    """


def _worklist_sql(conn: sqlite3.Connection) -> str:
    flag = "w.indeterminate" if _has_column(conn, "dicom_worklist", "indeterminate") else "0"
    # the worklist keeps each warning as its SR line, "Warning (<code>): <message>"
    return f"""
    WITH base AS (
        SELECT w.id AS id, substr(COALESCE(w.classified_at, w.received_at), 1, 10) AS day,
               COALESCE(w.model, '') AS model, w.prediction AS prediction,
               w.probabilities AS probabilities, w.seconds AS seconds, w.warnings AS warnings,
               (w.prediction IS NULL OR COALESCE({flag}, 0) != 0) AS indeterminate
        FROM dicom_worklist w
        WHERE w.status IN ('classified', 'failed')
    )
    SELECT base.id, day, model, prediction, {_CONFIDENCE}, seconds, indeterminate, codes.code
    FROM base LEFT JOIN (
        SELECT base.id AS id,
               substr(j.value, 10, instr(j.value, ')') - 10) AS code
        FROM base, json_each(CASE WHEN json_valid(base.warnings) THEN base.warnings
                                  ELSE '[]' END) AS j
        WHERE j.type = 'text' AND j.value LIKE 'Warning (%)%'
    ) AS codes ON codes.id = base.id
    WHERE day BETWEEN ? AND ?
    ORDER BY base.id, codes.code
    """


def _collect(
    conn: sqlite3.Connection, sql: str, lo: str, hi: str, found: dict[tuple[str, str], DayStats]
) -> None:
    last: object = None
    for row in conn.execute(sql, (lo, hi)):
        row_id, day, model, prediction, confidence, seconds, indeterminate, code = row
        stats = found.setdefault((day, model), DayStats(day=day, model=model))
        if row_id != last:
            last = row_id
            stats.images += 1
            if indeterminate:
                stats.indeterminate += 1
            if prediction is not None:
                stats.classes[prediction] = stats.classes.get(prediction, 0) + 1
            if confidence is not None:
                stats.confidence_sum += float(confidence)
                stats.confidence_n += 1
            if seconds is not None:
                stats.latency_sum += float(seconds)
                stats.latency_n += 1
        if code in WARNING_CODES:
            stats.warnings[code] = stats.warnings.get(code, 0) + 1


def _has_column(conn: sqlite3.Connection, table: str, name: str) -> bool:
    return any(row[1] == name for row in conn.execute(f"PRAGMA table_info({table})"))
