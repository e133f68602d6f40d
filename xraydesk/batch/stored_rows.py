"""A recorded run's rows as a sequence read from the results database when asked for.

Why: a table that held every ``ResultRow`` of a run needed ~1.4 KB per file (a path,
a dict of probabilities, a hash, warnings...): 1.4 GB for a million-image archive. The
rows are in the database anyway (committed before the engine hands them out), so a
table keeps only their number and reads the few it shows, a chunk at a time, keeping
the last few chunks (``CHUNK`` x ``CHUNKS`` rows at most, whatever the run's size).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import overload

from xraydesk.batch.database import ResultStore
from xraydesk.batch.rows import ResultRow

CHUNK = 256  # rows read at once
CHUNKS = 16  # chunks kept (4,096 rows)


class StoredRows(Sequence[ResultRow]):
    """The first ``len`` rows of run ``run_id`` (``grow`` as more are committed). Reads go
    through the calling thread's connection of ``store`` (see ``SqliteStore``)."""

    def __init__(self, store: ResultStore, run_id: int, count: int | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.model = store.run(run_id).model
        self._count = store.row_count(run_id) if count is None else count
        self._chunks: OrderedDict[int, list[ResultRow]] = OrderedDict()
        self._lock = threading.Lock()

    def grow(self, count: int) -> None:
        """``count`` more rows of the run are committed (a run still going on)."""
        with self._lock:
            self._count += count
            for number in [n for n, rows in self._chunks.items() if len(rows) < CHUNK]:
                del self._chunks[number]  # read while the run had fewer rows

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> ResultRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[ResultRow]: ...

    def __getitem__(self, index: int | slice) -> ResultRow | list[ResultRow]:
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"row {index} of {self._count}")
        rows = self._chunk(index // CHUNK)
        if index % CHUNK >= len(rows):  # read before the row was committed: read again
            with self._lock:
                self._chunks.pop(index // CHUNK, None)
            rows = self._chunk(index // CHUNK)
        return rows[index % CHUNK]

    def __iter__(self) -> Iterator[ResultRow]:
        return self.iter_from(0)

    def iter_from(self, first: int) -> Iterator[ResultRow]:
        """The rows from ``first`` on, in order, read a chunk at a time (the cache is
        left as it was: a pass over a whole run would only flush it)."""
        for start in range(first, self._count, CHUNK):
            yield from self.store.rows_at(
                self.run_id, start, min(CHUNK, self._count - start), self.model
            )

    def _chunk(self, number: int) -> list[ResultRow]:
        with self._lock:
            rows = self._chunks.get(number)
            if rows is not None:
                self._chunks.move_to_end(number)
                return rows
        rows = self.store.rows_at(self.run_id, number * CHUNK, CHUNK, self.model)
        with self._lock:
            self._chunks[number] = rows
            while len(self._chunks) > CHUNKS:
                self._chunks.popitem(last=False)
        return rows
