"""One SQLite connection per thread to a database in WAL mode, shared by every store.

Why per thread: sqlite3 connections must not be used from two threads at once, and the
stores are read from worker threads (the batch engine's skip lookups, the DICOM node's
associations) while one thread writes. WAL lets those readers run beside the writer;
``synchronous=NORMAL`` keeps commits cheap (a committed transaction survives the process
dying; only an OS crash can lose the last ones). Both the results store and the DICOM
worklist live in ``results.sqlite`` and open it through these classes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Self


class ThreadConnections:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        """The calling thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # check_same_thread=False only so close() may close it from another thread;
            # each connection is used by the thread that made it.
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection; the next ``get`` opens a new one."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()


def make_private(path: Path) -> None:
    """Create the database file 0600, or tighten it and its -wal/-shm files to 0600: it
    holds the worklist's patient names and IDs. SQLite creates -wal and -shm with the
    database file's permissions, so they follow."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            if part.stat().st_mode & 0o077:
                os.chmod(part, 0o600)


def damaged_remedy(exc: BaseException) -> str:
    """What to do when SQLite says the file is not a usable database ("malformed", "not a
    database"): move it aside, which keeps its rows for recovery and lets XRayDesk start
    an empty one; "" for other errors (a locked file, a full disk), which pass."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return (
            "; the file is damaged: rename or move it (its earlier results stay in it for "
            "recovery) and XRayDesk starts a new, empty one"
        )
    return ""


class SqliteStore:
    """Base of the stores in ``results.sqlite``: the per-thread connections, ``close`` and
    the context manager, and one way to open the file and say why it could not be.

    A subclass sets ``error`` (its typed error) and ``what`` ("the results database"), and
    writes its schema in ``_create``, which runs in the opening thread's connection.
    """

    error: type[Exception] = sqlite3.Error
    what = "the database"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = ThreadConnections(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            make_private(self.path)
            self._create(self._connection())
        except sqlite3.Error as exc:
            self.close()
            raise self.error(
                f"{self.path}: cannot open {self.what} ({exc}){damaged_remedy(exc)}"
            ) from exc
        except OSError as exc:
            raise self.error(
                f"{self.path}: cannot create {self.what} ({exc.strerror or exc})"
            ) from exc

    def _create(self, conn: sqlite3.Connection) -> None:
        raise NotImplementedError

    def _connection(self) -> sqlite3.Connection:
        return self._threads.get()

    def close(self) -> None:
        self._threads.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
