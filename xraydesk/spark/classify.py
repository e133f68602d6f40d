"""``classify``: an archive of radiographs to a Parquet table, on Spark (driver side).

INPUT is a folder (searched recursively), a glob, a CSV or Parquet table with a path
column (relative paths are taken from the table's folder, as in a training manifest), a
catalog table (``table:NAME``), or in Python a DataFrame with a path column. Local
folders and globs are listed here in Python (``listing``: Java would drop names that are
not UTF-8), remote ones by Spark's ``binaryFile`` source, so any file system Spark reads
works (HDFS, S3A, ABFS, DBFS); local files are read by the workers themselves, remote
ones by Spark (the bytes travel in the Arrow batches). Files whose name starts with ``.``
or ``_`` are left out, as Spark does.

Output columns: path, content_hash, model, version, prediction, indeterminate,
p_<class> per class, warnings (the desktop's stable codes: not_chest, rotated,
out_of_distribution...), error. ``indeterminate`` is true where the one verdict names no
class (the operating rule, or the input gate): prediction null, the p_ columns those of
the withheld answer; false on every other row. A bad file is an error row, never a
failed job. As in the desktop's folder walk, a listed file that is not an image by
content is passed over (notes.txt) unless its name says image (then it is an error row:
an empty .png, a text file named .dcm). The output is appended to: a re-run leaves out
every file whose content hash this model (name and version) already has a row for, and
every unreadable path it already reported, so an interrupted job is simply run again."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from xraydesk.errors import XRayDeskError
from xraydesk.model.card import ModelCard
from xraydesk.model.library import resolve_model
from xraydesk.spark import warm
from xraydesk.spark.listing import local_csv_paths, local_file_uris
from xraydesk.spark.session import get_session
from xraydesk.spark.worker_model import KnownRows, ModelRef, result_columns

TABLE_PREFIX = "table:"
FILES_PER_TASK = 256  # small tasks spread slow files and let a lost executor cost little


@dataclass
class ClassifySummary:
    output: str
    model: str  # "name version"
    rows: int  # rows this run added
    classified: int
    failed: int
    already: int  # rows the output already had for this model (their files were left out)
    seconds: float

    def line(self) -> str:
        return (
            f"{self.rows} row(s) added to {self.output} with {self.model}: "
            f"{self.classified} classified, {self.failed} failed; "
            f"{self.already} were already there ({self.seconds:.1f} s)"
        )


def output_schema(class_ids: list[str]) -> Any:
    """The Parquet schema, as a Spark ``StructType``. Not a DDL string: pyspark hands DDL
    to the JVM's SQL parser, whose first use in a session cost 0.15 CPU s (the grammar's
    tables built) on the driver's path to the first job; a ``StructType`` travels as JSON.
    (Intel Xeon family 6 model 207, 2 cores, loaded; the job parses nothing else.)"""
    from pyspark.sql import types as T

    types: dict[str, Any] = {
        "warnings": T.ArrayType(T.StringType()),
        "indeterminate": T.BooleanType(),
    }
    for cid in class_ids:
        types[f"p_{cid}"] = T.DoubleType()
    columns = result_columns(class_ids)
    return T.StructType([T.StructField(c, types.get(c, T.StringType())) for c in columns])


def classify(
    source: str | os.PathLike[str] | Any,
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | ModelCard | None = None,
    spark: Any = None,
    master: str | None = None,
    device: str = "auto",
    precision: str | None = None,
    batch_size: int = 32,
    ship_model: bool | None = None,
    path_column: str = "path",
    partitions: int | None = None,
    overwrite: bool = False,
) -> ClassifySummary:
    """Classify every image of ``source`` into the Parquet table ``output``; see the module
    docstring. ``model``: a name, card path or ModelCard (default: the default model).
    ``ship_model``: send card and weights to the executors with ``addFile`` (default: on
    any master but ``local``; off, they read the card's path, which must be shared).
    ``precision``: "fp32" turns mixed precision off on the executors (reference runs)."""
    started = time.perf_counter()
    card = model if isinstance(model, ModelCard) else resolve_model(model)
    spark = spark if spark is not None else get_session(master, "xraydesk classify")
    out = str(output)
    ref = model_ref(spark, card, ship_model, device, precision, batch_size)
    warmup = warm.start(spark, ref)  # the workers load the model while the driver lists
    try:
        summary = _classify(spark, card, ref, source, out, path_column, partitions, overwrite)
    finally:
        if warmup is not None:
            warmup.finish()
    summary.seconds = time.perf_counter() - started
    return summary


def _classify(
    spark: Any,
    card: ModelCard,
    ref: ModelRef,
    source: Any,
    out: str,
    path_column: str,
    partitions: int | None,
    overwrite: bool,
) -> ClassifySummary:
    listing, base, cut = _listing(spark, source, path_column)
    walked = _is_location(source)
    if partitions:
        listing = listing.repartition(partitions)
    elif not cut:  # a cut listing is not asked again: see ``_listing``
        listing = spread(spark, listing)
    known = KnownRows() if overwrite else _known_rows(spark, out, card)
    rows_before = 0 if overwrite else _tally(spark, out, card)
    shared = spark.sparkContext.broadcast(known if len(known) else None)
    # rows written and rows without an error, counted by the tasks as they write (Spark
    # applies a successful write task's counts once), not by reading the output again
    written, ok = spark.sparkContext.accumulator(0), spark.sparkContext.accumulator(0)

    def run(batches: Any) -> Any:
        from xraydesk.spark.worker_memory import map_torch_first

        map_torch_first()  # before any Arrow batch is read
        from xraydesk.spark.worker_classify import classify_batches

        for batch in classify_batches(batches, ref, shared.value, base, walked):
            written.add(batch.num_rows)
            ok.add(batch.column("error").null_count)
            yield batch

    rows = listing.mapInArrow(run, output_schema(card.class_ids))
    rows.write.mode("overwrite" if overwrite else "append").parquet(out)
    shared.unpersist()
    added, classified = int(written.value), int(ok.value)
    return ClassifySummary(
        output=out,
        model=card.label,
        rows=added,
        classified=classified,
        failed=added - classified,
        already=rows_before,
        seconds=0.0,  # set by ``classify``
    )


def model_ref(
    spark: Any,
    card: ModelCard,
    ship: bool | None,
    device: str,
    precision: str | None,
    batch_size: int,
) -> ModelRef:
    if card.path is None:
        raise XRayDeskError(f"model {card.label} has no card file to send to the executors")
    if ship is None:
        ship = not spark.sparkContext.master.startswith("local")
    options = {"device": device, "precision": precision, "batch_size": batch_size}
    ref = ModelRef.of(card, **options)
    if not ship:
        return ref
    context = spark.sparkContext
    context.addFile(str(card.path))
    context.addFile(str(card.weights_path))
    return ModelRef(card.path.name, ref.weights_sha256, ref.integrity, True, **options)


def _listing(spark: Any, source: Any, path_column: str) -> tuple[Any, str | None, bool]:
    """A DataFrame with a ``path`` column (and ``content`` for remote folders), the
    folder relative paths are taken from (tables only), and whether the frame is already
    cut into tasks (``_path_frame``). A cut frame is not spread again: ``spread`` asks
    Spark for its partitions, and for a listing cut by a shuffle (over ``FILES_PER_TASK``
    files a core) Spark ran that shuffle just to answer, then the write ran it again
    (0.1 to 0.3 s on the driver's path; Intel Xeon family 6 model 207, 2 cores, loaded)."""
    if not isinstance(source, str | os.PathLike):  # a DataFrame
        return source.select(source[path_column].cast("string").alias("path")), None, False
    text = str(source)
    if text.startswith(TABLE_PREFIX):
        frame = _table(spark, text[len(TABLE_PREFIX) :])
        return frame.select(frame[path_column].cast("string").alias("path")), None, False
    suffix = Path(urlparse(text).path).suffix.lower()
    paths = local_csv_paths(text, path_column) if suffix == ".csv" else None
    if paths is not None:
        return _path_frame(spark, paths), _folder_of(text), True
    if suffix in (".csv", ".parquet"):
        if suffix == ".csv":
            frame = spark.read.option("header", True).csv(text)
        else:
            frame = spark.read.parquet(text)
        if path_column not in frame.columns:
            raise XRayDeskError(
                f"{text}: no {path_column!r} column (columns: {', '.join(frame.columns)}); "
                "name the column with --path-column"
            )
        base = _folder_of(text)
        return frame.select(frame[path_column].cast("string").alias("path")), base, False
    listing, cut = _files(spark, text)
    return listing, None, cut


def _table(spark: Any, name: str) -> Any:
    """A catalog table, or a clear error naming it (not Spark's AnalysisException)."""
    if not name.strip():
        raise XRayDeskError("table: needs a table name (table:NAME)")
    try:
        return spark.table(name)
    except Exception as exc:  # AnalysisException: TABLE_OR_VIEW_NOT_FOUND, a bad name
        if type(exc).__name__ not in ("AnalysisException", "ParseException"):
            raise
        raise XRayDeskError(f"table {name!r}: {_table_cause(exc)}") from exc


def _table_cause(exc: BaseException) -> str:
    text = _first_line(exc)
    if "TABLE_OR_VIEW_NOT_FOUND" in text:
        return "no such table or view in the Spark catalog (check the name and the database)"
    return text


def _is_location(source: Any) -> bool:
    """A folder or glob (listed here), rather than a table that names its files."""
    if not isinstance(source, str | os.PathLike):
        return False
    text = str(source)
    suffix = Path(urlparse(text).path).suffix.lower()
    return not text.startswith(TABLE_PREFIX) and suffix not in (".csv", ".parquet")


def _files(spark: Any, location: str) -> tuple[Any, bool]:
    """Every file under a folder or matching a glob, listed by Spark's file index (on the
    driver, where Spark keeps its listing anyway). Not a scan: a scan passes over empty
    files (SPARK-26161), and an empty .png must become an error row. Remote files are read
    by Spark (content column; null where the scan passed over the file). True with local
    files: the listing is ``_path_frame``'s, cut into tasks; a join's is not."""
    parsed = urlparse(location)
    local = parsed.scheme in ("", "file")
    where = unquote(parsed.path) if parsed.scheme == "file" else location
    files = local_file_uris(where) if local else None
    if files is None:  # remote storage, or a glob only Spark expands
        reader = spark.read.format("binaryFile").option("recursiveFileLookup", "true")
        try:
            scan = reader.load(location)
            files = sorted(scan.inputFiles())
        except Exception as exc:  # AnalysisException: path does not exist, or no file matched
            raise XRayDeskError(f"{location}: nothing to classify ({_first_line(exc)})") from exc
    listing = _path_frame(spark, files)
    if local:
        return listing, True
    return listing.join(scan.select("path", "content"), "path", "left"), False


def _path_frame(spark: Any, files: list[str] | list[str | None]) -> Any:
    """The listed paths as a DataFrame in ``FILES_PER_TASK``-file slices, handed to the JVM
    as one Arrow table: a local relation, one slice per core, with no job of its own.
    Why not a list of tuples: pyspark sends that as a Python RDD whose rows a Python map
    re-pickles, so the write's first stage started a second set of Python workers (their
    own daemon, apart from the warm SQL ones) just to turn paths into rows: seconds on the
    critical path of a 500-file job (measured, tests/benchmarks/bench_spark.py). A list
    longer than ``FILES_PER_TASK`` a core is cut finer (a shuffle, small beside its work)."""
    import pyarrow as pa

    frame = spark.createDataFrame(pa.table({"path": pa.array(files, pa.string())}))
    slices = max(spark.sparkContext.defaultParallelism, math.ceil(len(files) / FILES_PER_TASK))
    return frame.repartition(slices) if frame.rdd.getNumPartitions() != slices else frame


def spread(spark: Any, listing: Any) -> Any:
    """A table of paths spread over every core: a small CSV is one partition, which kept
    one Python worker busy and the other cores idle (half the speed on local[2])."""
    cores = spark.sparkContext.defaultParallelism
    return listing.repartition(cores) if listing.rdd.getNumPartitions() < cores else listing


def _folder_of(table: str) -> str | None:
    parsed = urlparse(table)
    if parsed.scheme not in ("", "file"):
        return None
    path = Path(parsed.path if parsed.scheme else table)
    return str(path.resolve().parent)


def _known_rows(spark: Any, output: str, card: ModelCard) -> KnownRows:
    """What the output already holds for this model (name and version)."""
    existing = _read_output(spark, output)
    if existing is None:
        return KnownRows()
    from pyspark.sql import functions as F

    mine = existing.filter((F.col("model") == card.name) & (F.col("version") == card.version))
    hashes = [r[0] for r in mine.select("content_hash").where("content_hash IS NOT NULL")
              .distinct().collect()]  # fmt: skip
    failed = [r[0] for r in mine.where("content_hash IS NULL").select("path").distinct().collect()]
    return KnownRows.build(hashes, failed)


def _read_output(spark: Any, output: str) -> Any:
    local = urlparse(output).scheme in ("", "file")
    if local and not Path(output).exists():
        return None
    try:
        return spark.read.option("mergeSchema", "true").parquet(output)
    except Exception as exc:  # AnalysisException: not there, or not Parquet
        if local and Path(output).exists():
            raise XRayDeskError(f"{output}: not a Parquet table ({_first_line(exc)})") from exc
        return None


def _tally(spark: Any, output: str, card: ModelCard) -> int:
    """How many rows the output already holds for this model."""
    from pyspark.sql import functions as F

    table = _read_output(spark, output)
    if table is None:
        return 0
    mine = table.filter((F.col("model") == card.name) & (F.col("version") == card.version))
    return int(mine.count())


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
