"""XRayDesk on Apache Spark: classify an archive and quick-train on a cluster (no Qt here).

The desktop engine runs inside Spark's Python workers: the same loader, preprocessing,
model card, weights check and batch model as ``xraydesk classify``; only the fan-out is
Spark's. pyspark is an optional extra (``pip install "xraydesk[spark]"``, with Java 17):
nothing here imports it at module level, so the desktop app and its installer never need
it. Entry points for notebooks: ``classify`` and ``train_quick``; the command line is
``xraydesk spark``.
"""

from __future__ import annotations

from xraydesk.spark.classify import ClassifySummary, classify
from xraydesk.spark.train import SparkOptions, SparkTrainResult, train_quick

__all__ = ["ClassifySummary", "SparkOptions", "SparkTrainResult", "classify", "train_quick"]
