"""What the ``runs`` table records of a batch run: its status and its counts.

``RunStatus`` values are the strings stored in ``runs.status`` (a ``StrEnum`` equals its
string, so older databases and JSON read the same). ``RunCounts`` is the one record of a
run's counts: both the summary a finished run returns (``run.RunSummary``) and a past run
read back from the database (``database.RunInfo``) are ``RunCounts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RunStatus(StrEnum):
    """A batch run's status as stored in ``runs.status``."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # recorded as running, but its process is gone


def run_status(text: str) -> RunStatus | str:
    """The ``RunStatus`` of a stored status; a value this version does not know (a newer
    XRayDesk's) is kept as the text, so reading an old or new database never fails."""
    try:
        return RunStatus(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class RunCounts:
    """How many files a run found (``total``; None while still counting) and what became
    of them: the columns of ``runs`` that ``ResultStore.update_counts`` writes."""

    total: int | None
    classified: int
    reused: int
    failed: int
    not_images: int
    hidden: int

    @property
    def done(self) -> int:
        """Files with a row: classified, reused from an earlier run, or failed."""
        return self.classified + self.reused + self.failed
