"""A batch run's progress record: the shared ``Progress`` plus the row counts it shows."""

from __future__ import annotations

from dataclasses import dataclass

from xraydesk.progress import Progress, Rate


@dataclass(frozen=True)
class BatchProgress(Progress):
    """``done`` rows (classified + reused + failed) of ``total`` images found (None while
    the folder is still being counted); ``rate`` is rows per second (0 before the first)."""

    classified: int = 0
    reused: int = 0
    failed: int = 0


def batch_progress(
    meter: Rate, done: int, total: int | None, classified: int, reused: int, failed: int
) -> BatchProgress:
    """The record for ``done`` rows as measured by ``meter``."""
    return BatchProgress(
        phase="classifying",
        done=done,
        total=total,
        elapsed=meter.elapsed,
        rate=meter.rate or 0.0,
        eta=meter.eta(done, total),
        classified=classified,
        reused=reused,
        failed=failed,
    )
