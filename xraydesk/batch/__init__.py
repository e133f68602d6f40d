"""Classifying many files: discovery, the pipeline, the results store, exports.

The one entry point is ``BatchRun`` (``xraydesk classify`` and the GUI's batch panel both
drive it); see ``engine`` for how the stages overlap and ``store`` for the database.
"""

from xraydesk.batch.discover import DiscoveryStats, count_images, iter_images
from xraydesk.batch.engine import (
    BatchAborted,
    BatchOptions,
    BatchRun,
    RunSummary,
    classify_paths,
    content_hash,
)
from xraydesk.batch.progress import Progress
from xraydesk.batch.results import ExportError, ResultRow, export_rows
from xraydesk.batch.store import ResultStore, RunInfo, StoreError

__all__ = [
    "BatchAborted",
    "BatchOptions",
    "BatchRun",
    "DiscoveryStats",
    "ExportError",
    "Progress",
    "ResultRow",
    "ResultStore",
    "RunInfo",
    "RunSummary",
    "StoreError",
    "classify_paths",
    "content_hash",
    "count_images",
    "export_rows",
    "iter_images",
]
