"""One SQLite connection per thread to a database in WAL mode, shared by every store.

Why per thread: sqlite3 connections must not be used from two threads at once, and the
stores are read from worker threads (the batch engine's skip lookups, the DICOM node's
associations) while one thread writes. WAL lets those readers run beside the writer;
``synchronous=NORMAL`` keeps commits cheap (a committed transaction survives the process
dying; only an OS crash can lose the last ones). Both the results store and the DICOM
worklist live in ``results.sqlite`` and open it through this class.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path


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
