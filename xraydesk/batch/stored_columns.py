"""The results table's columns as stored: how a value is written and read back, and how
a database made before a column existed gains it (``database`` holds the schema)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from xraydesk.trust.codes import ResultWarning


def add_column(conn: sqlite3.Connection, name: str, kind: str) -> None:
    """Add a column to ``results`` of a database made before it existed (another process
    may be doing the same at this moment: its column is as good as ours)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
    if name in columns:
        return
    try:
        conn.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


def stored_indeterminate(flag: int | None, prediction: str | None, error: str | None) -> bool:
    """A stored row's flag; a row from before the column: no class and no error."""
    if flag is not None:
        return bool(flag)
    return prediction is None and error is None


def warnings_json(warnings: list[ResultWarning]) -> str:
    return json.dumps([w.to_dict() for w in warnings], ensure_ascii=False)


def warnings_from(text: str | None) -> list[ResultWarning]:
    """Stored warnings; a code this version does not know is kept out, not an error."""
    if not text:
        return []
    found = []
    for item in json.loads(text):
        try:
            found.append(ResultWarning.from_dict(item))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def raw_path(path: Path) -> bytes | None:
    """The bytes of a name that is not valid UTF-8 (None for every other name)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return None


def stored_path(text: str, raw: bytes | None) -> Path:
    return Path(os.fsdecode(raw)) if raw is not None else Path(text)
