"""Starting the Python workers and loading the model while the driver lists the files.

A job's first tasks wait for Spark to start its Python workers and for each worker to
import the engine and load the model (the runtime compiles its graph: seconds each).
None of that needs the file list, so ``classify``
starts it at once in a side job (``start``), one task per core: while the driver lists
the input and plans the write (the JVM's own first-job start-up, seconds more), every
worker gets ready. Spark reuses its Python workers, and each keeps its model
(``worker_model.loaded_model``), so the write's tasks find them ready. Without worker reuse
(``spark.python.worker.reuse=false``) a warm worker would be thrown away: nothing is
started then. The side job never fails a run: a worker that cannot load the model says
why in the real job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from xraydesk.spark.worker_model import ModelRef

log = logging.getLogger(__name__)

GROUP = "xraydesk-warm-workers"


class Warmup:
    """The side job, running in a driver thread until ``finish``."""

    def __init__(self, spark: Any, ref: ModelRef) -> None:
        self.spark, self.context = spark, spark.sparkContext
        self.ref = ref
        self.thread = threading.Thread(target=self._run, name="xraydesk-warm", daemon=True)

    def _run(self) -> None:
        context, ref = self.context, self.ref
        cores = max(1, int(context.defaultParallelism))
        try:
            context.setJobGroup(GROUP, "xraydesk: start the Python workers and load the model")
            # mapInArrow, as the write: Spark keeps the workers of SQL's Python runners
            # apart from those of RDD jobs, so only this one hands its workers on
            tasks = self.spark.range(cores, numPartitions=cores)
            schema = note_schema()
            notes = tasks.mapInArrow(lambda batches: _warm(batches, ref), schema).collect()
        except Exception as exc:  # cancelled, or Spark stopped: the real job goes on
            log.debug("warming the workers ended: %s", exc)
            return
        for row in notes:
            if row["note"]:
                log.debug("a worker was not warmed: %s", row["note"])

    def finish(self) -> None:
        """Wait for the side job (it is over once the write's tasks have run); cancel it
        when the run ended early (an error before the write)."""
        if self.thread.is_alive():
            self.context.cancelJobGroup(GROUP)
        self.thread.join()


def start(spark: Any, ref: ModelRef) -> Warmup | None:
    """The side job, started (None where Spark does not reuse its Python workers)."""
    conf = spark.sparkContext.getConf()
    if conf.get("spark.python.worker.reuse", "true").strip().lower() != "true":
        return None
    warmup = Warmup(spark, ref)
    warmup.thread.start()
    return warmup


def note_schema() -> Any:
    """The side job's one column, as a ``StructType``: not the DDL "note string", which
    pyspark hands to the JVM's SQL parser (its first use built the grammar's tables on the
    first job's path; see ``classify.output_schema``)."""
    from pyspark.sql.types import StringType, StructField, StructType

    return StructType([StructField("note", StringType())])


def _warm(batches: Iterator[Any], ref: ModelRef) -> Iterator[Any]:
    """Worker side: load the model and run one pass; one row, "" or why it could not."""
    from xraydesk.spark.worker_memory import map_torch_first

    map_torch_first()  # before any Arrow batch is read
    import pyarrow as pa

    from xraydesk.spark.arrow_columns import record_batch
    from xraydesk.spark.worker_classify import warm_up

    note = warm_up(ref)
    for _batch in batches:
        pass
    yield record_batch({"note": [note]}, pa.schema([("note", pa.string())]))
