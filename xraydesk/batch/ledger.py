"""A batch run's record: its counts and, when recording, its run and rows in the database.

Rows are committed in groups, the run's counts in the same transaction, so the runs table
never counts a row it does not hold; the end of the run (status and message) is written
last and never ends the run itself.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from xraydesk.batch.database import ResultStore, model_key
from xraydesk.batch.rows import ResultRow
from xraydesk.batch.run_state import RunStatus
from xraydesk.errors import XRayDeskError
from xraydesk.imaging.discover import DiscoveryStats
from xraydesk.model.card import ModelCard

log = logging.getLogger(__name__)


class BatchAborted(XRayDeskError):
    """The run ended early for a reason that is not one file's fault (folder gone, disk
    full). The rows finished before it are in the database."""


class RunLedger:
    """Counts of classified, reused and failed rows; the store when the run is recorded."""

    def __init__(self, card: ModelCard, stats: DiscoveryStats) -> None:
        self.key = model_key(card)
        self.stats = stats
        self.store: ResultStore | None = None
        self.run_id: int | None = None
        self.total: int | None = None  # images found, once counted
        self.counts = {"classified": 0, "reused": 0, "failed": 0}
        self.seq = 0  # rows finished (stored, when recording)

    def open(
        self,
        db_path: str | os.PathLike[str] | None,
        inputs: list[Path],
        recursive: bool,
        card: ModelCard,
    ) -> None:
        """Record a new run in the results database (``db_path`` None: the default one)."""
        store = ResultStore(db_path)
        try:
            absolute = [str(p.absolute()) for p in inputs]
            self.run_id = store.start_run(absolute, recursive, card)
        except BaseException:
            store.close()
            raise
        self.store = store

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def add(self, rows: list[ResultRow]) -> None:
        """Count ``rows`` and, when recording, store and commit them with the counts.

        The counts change only once the rows are committed: after a full disk the summary
        and the runs table count the rows the database holds, not the ones it refused.
        """
        counts = dict(self.counts)
        for row in rows:
            kind = "failed" if not row.ok else "reused" if row.reused else "classified"
            counts[kind] += 1
        if self.store is not None and self.run_id is not None:
            try:
                self.store.add_rows(self.run_id, self.key, self.seq, rows)
                self.store.update_counts(self.run_id, **self.run_counts(counts))
                self.store.commit()
            except sqlite3.Error as exc:
                self.store.rollback()
                raise BatchAborted(
                    f"{self.store.path}: the results database could not be written ({exc}); "
                    f"{self.seq} rows finished before are safe in it"
                ) from exc
        self.counts = counts
        self.seq += len(rows)

    def run_counts(self, counts: dict[str, int] | None = None) -> dict[str, int | None]:
        return {
            "total": self.total,
            **(self.counts if counts is None else counts),
            "not_images": self.stats.not_images,
            "hidden": self.stats.hidden,
        }

    def saved_note(self) -> str:
        """What is safe after an abort, for the message that ends the run."""
        if self.run_id is None:
            return f"{self.seq} files were finished"
        return (
            f"the {self.seq} files finished are saved in the results database "
            f"(run {self.run_id}); run again to classify the rest"
        )

    def close(self, status: RunStatus, message: str | None) -> None:
        """Record how the run ended; a failure here is logged (the rows are committed)."""
        store, self.store = self.store, None
        if store is None or self.run_id is None:
            return
        try:
            store.update_counts(self.run_id, **self.run_counts())
            store.finish_run(self.run_id, status, message)
        except sqlite3.Error as exc:  # the rows are committed; only the status is lost
            log.warning("could not record the end of batch run %s: %s", self.run_id, exc)
        finally:
            store.close()
