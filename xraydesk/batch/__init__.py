"""Classifying many files: discovery, the pipeline, the results store, exports.

The one entry point is ``BatchRun`` (``xraydesk classify`` and the GUI's batch panel both
drive it); see ``run`` for how the stages overlap, ``rows`` for a result row and its
exports, and ``database`` for the results database.
"""

from xraydesk.batch.database import ResultStore, RunInfo, StoreError
from xraydesk.batch.progress import BatchProgress
from xraydesk.batch.rows import ExportError, ResultRow, export_rows
from xraydesk.batch.run import (
    BatchAborted,
    BatchOptions,
    BatchRun,
    RunSummary,
    classify_paths,
    content_hash,
)
from xraydesk.imaging.discover import DiscoveryStats, count_images, iter_images

__all__ = [
    "BatchAborted",
    "BatchOptions",
    "BatchProgress",
    "BatchRun",
    "DiscoveryStats",
    "ExportError",
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
