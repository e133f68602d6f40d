"""XRayDesk on Apache Spark: classify an archive and quick-train on a cluster (no Qt here).

The desktop engine runs inside Spark's Python workers: the same loader, preprocessing,
model card, weights check, runtime choice and batch model as ``xraydesk classify``; only
the fan-out is Spark's. pyspark is an optional extra (``pip install -e ".[spark]"`` in
the XRayDesk folder, with Java 17): nothing here imports it at module level, so the
desktop app and its installer never need it. Entry points for notebooks: ``classify``
and ``train_quick``; the command line is ``xraydesk spark``.

The training entry points are imported on first use (``__getattr__``): every Python
worker imports this package to run its part, and the training side would bring torch and
the trainer into workers whose model runs on an exported graph (seconds per worker).
``classify`` is imported now: its module shares the function's name, and an import of
the module would otherwise leave ``xraydesk.spark.classify`` naming the module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xraydesk.spark.classify import ClassifySummary, classify

if TYPE_CHECKING:
    from xraydesk.spark.train import SparkOptions, SparkTrainResult, train_quick

_WHERE = {
    "SparkOptions": "xraydesk.spark.train",
    "SparkTrainResult": "xraydesk.spark.train",
    "train_quick": "xraydesk.spark.train",
}

__all__ = ["ClassifySummary", "SparkOptions", "SparkTrainResult", "classify", "train_quick"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'xraydesk.spark' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
