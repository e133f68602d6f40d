"""Spark (local[N]) against the desktop batch engine, same files, same model, same run.

    python tests/benchmarks/bench_spark.py --data ../shared/data [--limit 1000] [--master local[2]]

A random-weight ResNet-50 at 224 px (speed does not depend on the weights), or
``--model NAME`` from the library, classifies the kermany-pediatric pool (all 5,179
files, or the first ``--limit`` of its manifest) twice:

1. the desktop batch engine (``xraydesk.batch.BatchRun``, not recording);
2. ``xraydesk.spark.classify`` on a SparkSession with ``--master`` (default local[2]),
   the files given as a table of paths, written to a fresh Parquet table.

Prints images/s for both, Spark's session start-up and its overhead on the job itself
(Spark seconds / desktop seconds - 1), and the throughput per executor core. Both use
the precision the device chooses (bf16 where the CPU has it), unless XRAYDESK_PRECISION=fp32.
The machine may be shared: compare the two figures of one run, not runs with each other.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.machine import cpu_name  # noqa: E402


def pool_files(data: Path, limit: int | None) -> list[Path]:
    pool = data / "kermany-pediatric"
    with open(pool / "manifest.csv", newline="") as fh:
        files = [pool / row["path"] for row in csv.DictReader(fh)]
    return files[:limit] if limit else files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, help="first N files of the pool (default: all)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--model", help="library model name (default: random ResNet-50, 224 px)")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    from xraydesk.batch.run import BatchOptions, BatchRun
    from xraydesk.classifier import Classifier
    from xraydesk.model.library import resolve_model
    from xraydesk.spark import classify
    from xraydesk.spark.session import get_session

    files = pool_files(args.data.resolve(), args.limit)  # a table of relative paths would
    # be read relative to the table's own folder
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    os.environ.setdefault("XRAYDESK_DATA_DIR", str(work / "data"))
    if args.model:
        card = resolve_model(args.model)
    else:
        from tests.model_factory import make_test_model

        card = resolve_model(str(make_test_model(work / "model", size=224)))
    classifier = Classifier.load(card, device="cpu")

    start = time.perf_counter()
    options = BatchOptions(record=False, count_total=False, batch_size=args.batch)
    desktop = BatchRun(files, classifier, options).run()
    desktop_s = time.perf_counter() - start

    table = work / "files.csv"
    table.write_text("path\n" + "".join(f"{f}\n" for f in files))
    start = time.perf_counter()
    conf = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
    spark = get_session(args.master, "xraydesk-bench", conf)
    spark.sparkContext.setLogLevel("ERROR")
    session_s = time.perf_counter() - start
    start = time.perf_counter()
    summary = classify(table, work / "out.parquet", model=card, spark=spark, batch_size=args.batch)
    spark_s = time.perf_counter() - start
    cores = spark.sparkContext.defaultParallelism
    spark.stop()

    result = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "model": f"{card.label} ({card.preprocessing.size} px)",
        "device": classifier.device.label,
        "files": len(files),
        "desktop": {
            "seconds": round(desktop_s, 1),
            "images_per_s": round(desktop.done / desktop_s, 1),
            "failed": desktop.failed,
            "schedule": desktop.schedule,
        },
        "spark": {
            "master": args.master,
            "session_start_s": round(session_s, 1),
            "job_seconds": round(spark_s, 1),
            "images_per_s": round(summary.rows / spark_s, 1),
            "images_per_s_with_start": round(summary.rows / (spark_s + session_s), 1),
            "rows": summary.rows,
            "failed": summary.failed,
            "per_executor_core_images_per_s": round(summary.rows / spark_s / cores, 1),
        },
        "spark_overhead_on_the_job": f"{(spark_s / desktop_s - 1) * 100:+.0f}%",
    }
    print(json.dumps(result, indent=2))
    return 0 if summary.rows == len(files) and summary.failed == desktop.failed else 1


if __name__ == "__main__":
    sys.exit(main())
