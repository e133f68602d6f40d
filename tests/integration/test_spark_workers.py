"""How ``spark classify`` uses a real local[2] Spark (issue 28, item 4): every core gets
work, the Python workers are readied while the driver lists, the local JVM starts with
its quick compiler only. Needs pyspark and Java 17 (skipped without, failed in CI).
The speed itself is measured by tests/benchmarks/bench_spark.py, not here."""

from __future__ import annotations

import pytest

from tests.integration.spark_session import local_session
from xraydesk.model.card import ModelCard
from xraydesk.spark.session import LOCAL_JVM_FLAGS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spark():
    yield from local_session("xraydesk-worker-tests")


def test_the_local_jvm_runs_its_quick_compiler_only(spark):
    options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions")
    assert options is not None and LOCAL_JVM_FLAGS in options


def test_a_one_partition_table_is_spread_over_the_cores(spark, tmp_path):
    """A small CSV is one partition: one Python worker classified it all, the other core
    stayed idle (Spark at half the desktop's speed on local[2])."""
    from xraydesk.spark.classify import spread

    table = tmp_path / "files.csv"
    table.write_text("path\n" + "".join(f"/x/{k}.png\n" for k in range(40)))
    frame = spark.read.option("header", True).csv(str(table))
    assert frame.rdd.getNumPartitions() == 1
    spread_out = spread(spark, frame)
    assert spread_out.rdd.getNumPartitions() == 2
    assert sorted(r["path"] for r in spread_out.collect()) == sorted(
        f"/x/{k}.png" for k in range(40)
    )


def test_a_listing_is_split_over_the_cores_without_a_shuffle(spark):
    """Listed paths (a folder, a local CSV) become one partition per core straight from
    the driver's list: no Python worker pass to convert rows, no shuffle to spread them."""
    from xraydesk.spark.classify import _path_frame

    frame = _path_frame(spark, [f"/x/{k}.png" for k in range(40)])
    assert frame.rdd.getNumPartitions() == 2
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "Exchange" not in plan and "BatchEvalPython" not in plan, plan
    # the JVM holds the paths itself (an Arrow table): no Python RDD, whose rows a second
    # set of Python workers had to re-pickle in the write's first stage
    assert "LocalTableScan" in plan and "ExistingRDD" not in plan, plan
    assert sorted(r["path"] for r in frame.collect()) == sorted(f"/x/{k}.png" for k in range(40))


def test_a_long_listing_is_cut_into_tasks_of_files_per_task(spark):
    from xraydesk.spark.classify import FILES_PER_TASK, _path_frame

    files = [f"/x/{k}.png" for k in range(3 * FILES_PER_TASK + 1)]
    frame = _path_frame(spark, files)
    assert frame.rdd.getNumPartitions() == 4
    assert frame.count() == len(files)


def test_a_long_local_listing_is_not_counted_again(spark, test_model_path, tmp_path, monkeypatch):
    """A local CSV of more than ``FILES_PER_TASK`` files a core is cut by a shuffle; asking
    Spark for its partitions again (``spread``) ran that shuffle once more before the write
    ran it: the classify goes straight from the cut listing to the write."""
    import importlib

    classify_module = importlib.import_module("xraydesk.spark.classify")
    count = 2 * classify_module.FILES_PER_TASK + 1
    table = tmp_path / "files.csv"
    table.write_text("path\n" + "".join(f"{tmp_path}/gone-{k}.png\n" for k in range(count)))
    listing, base, cut = classify_module._listing(spark, str(table), "path")
    assert cut and base == str(tmp_path) and listing.rdd.getNumPartitions() == 3

    def spread(*_args):
        raise AssertionError("a cut listing was spread again")

    monkeypatch.setattr(classify_module, "spread", spread)
    summary = classify_module.classify(
        table, tmp_path / "out.parquet", model=test_model_path, spark=spark, precision="fp32"
    )
    assert (summary.rows, summary.failed) == (count, count)  # no such files: error rows


def test_warm_workers_keep_their_model_for_the_job(spark, test_model_path):
    """The side job loads the model in the Python workers that the job's own mapInArrow
    tasks then reuse (Spark keeps SQL's Python workers apart from RDD ones)."""
    import pyarrow as pa

    from xraydesk.spark import warm
    from xraydesk.spark.worker_model import ModelRef

    ref = ModelRef.of(ModelCard.read(test_model_path), device="cpu", precision="fp32")
    warmup = warm.start(spark, ref)
    assert warmup is not None
    warmup.finish()

    def loaded(batches):
        from xraydesk.spark import worker_model

        for _ in batches:
            pass
        yield pa.RecordBatch.from_pydict({"models": [len(worker_model._MODELS)]})

    tasks = spark.range(2, numPartitions=2).mapInArrow(loaded, "models long")
    counts = [r["models"] for r in tasks.collect()]
    assert max(counts) == 1, counts


def test_local_workers_import_the_installed_pyspark(spark):
    """Local sessions start xraydesk's daemon (``spark.daemon``): the workers import the
    installed pyspark, not the source in SPARK_HOME/python/lib/pyspark.zip (compiled again
    in every process: 0.7 CPU s more per worker start)."""
    import pyarrow as pa

    from xraydesk.spark.session import LOCAL_DAEMON

    assert spark.sparkContext.getConf().get("spark.python.daemon.module") == LOCAL_DAEMON

    def where(batches):
        import sys

        import pyspark

        from xraydesk.spark.arrow_columns import record_batch

        for _ in batches:
            pass
        zips = [p for p in sys.path if p.endswith("pyspark.zip")]
        found = [pyspark.__file__, sys.argv[0], str(len(zips))]
        yield record_batch({"found": ["|".join(found)]}, pa.schema([("found", pa.string())]))

    rows = spark.range(2, numPartitions=2).mapInArrow(where, "found string").collect()
    for row in rows:
        module, daemon, zips = row["found"].split("|")
        assert ".zip" not in module and daemon.endswith("xraydesk/spark/daemon.py"), row
        assert zips == "0", row
