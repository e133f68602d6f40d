"""``xraydesk spark``: classify an archive and quick-train on Apache Spark.

A thin front door over ``xraydesk.spark`` (which needs the optional extra, ``pip install
-e ".[spark]"`` in the XRayDesk folder, and Java 17). Run it directly (``--master URL``,
or ``local[*]`` by default) or under ``spark-submit``, which sets the master itself.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from xraydesk.cli.pairs import parse_pairs
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.path_args import location_text, path_arg, path_text

EXIT_OK, EXIT_FAILED = 0, 1

EPILOG = """\
INPUT is a folder (searched recursively), a glob, a CSV or Parquet table with a path
column (relative paths are taken from the table's folder), or table:NAME for a catalog
table; local paths or any URI Spark's file systems read (hdfs://, s3a://, abfss://, dbfs:/).
The output Parquet table has the columns path, content_hash, model, version, prediction,
indeterminate, p_<class> per class, warnings and error; a bad file is an error row. Running again
appends only files whose content this model has not classified yet.

Examples:
  xraydesk spark classify /archive --output results.parquet --master local[4]
  spark-submit --master yarn $(which xraydesk) spark classify hdfs:///cxr --output hdfs:///out.parquet
  xraydesk spark train-quick /data/pool --name my-model --compare random-forest,decision-tree
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "spark",
        help="classify or quick-train on Apache Spark (needs the [spark] extra)",
        description="Run XRayDesk's engine on an Apache Spark cluster.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="spark_command", metavar="ACTION", required=True)

    classify = actions.add_parser("classify", help="classify an archive into a Parquet table")
    classify.add_argument(
        "input", type=location_text, metavar="INPUT", help="folder, glob, CSV/Parquet table"
    )
    classify.add_argument("--output", required=True, type=location_text, metavar="OUT.parquet")
    classify.add_argument(
        "--model", type=path_text, metavar="NAME|PATH", help="model (default: the default)"
    )
    classify.add_argument("--path-column", default="path", help="path column of a table input")
    classify.add_argument("--overwrite", action="store_true", help="replace the output table")
    classify.add_argument("--partitions", type=int, metavar="N", help="repartition the input")
    _common(classify)
    classify.set_defaults(run=run_classify)

    train = actions.add_parser("train-quick", help="quick-mode training with Spark MLlib")
    train.add_argument(
        "data", nargs="+", type=location_text, metavar="DATA", help="folder or CSV manifest"
    )
    train.add_argument("--name", required=True, help="name of the new model")
    train.add_argument(
        "--base", type=path_text, metavar="MODEL|scratch", help="backbone (default: bundled)"
    )
    train.add_argument("--classes", metavar="A,B,...", help="class order; others left out")
    train.add_argument("--map", action="append", default=[], metavar="LABEL=CLASS")
    train.add_argument(
        "--compare",
        default="",
        metavar="HEADS",
        help="also train and evaluate these MLlib heads: random-forest,decision-tree",
    )
    train.add_argument("--size", type=int, metavar="PX", help="input size (default: base's)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--imbalance", choices=("weights", "none"), default="weights")
    train.add_argument("--min-per-class", type=int, default=None, metavar="N")
    train.add_argument("--output-dir", type=path_arg, help="save here instead of the library")
    _common(train)
    train.set_defaults(run=run_train)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--master", metavar="URL", help="Spark master (default: local[*])")
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting"
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32"),
        help="fp32 turns mixed precision off on the executors (default: as they choose)",
    )
    parser.add_argument("--batch", type=int, default=32, help="images per forward pass")
    parser.add_argument(
        "--ship-model",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send the model to the executors (default: yes unless the master is local)",
    )


def _session(args: argparse.Namespace, name: str) -> Any:
    from xraydesk.spark.session import get_session

    conf = parse_pairs(args.conf, "--conf")
    return get_session(args.master, name, conf)


def run_classify(args: argparse.Namespace) -> int:
    from xraydesk.spark.classify import classify

    spark = _session(args, "xraydesk spark classify")
    summary = classify(
        args.input,
        args.output,
        model=args.model,
        spark=spark,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch,
        ship_model=args.ship_model,
        path_column=args.path_column,
        partitions=args.partitions,
        overwrite=args.overwrite,
    )
    print(summary.line())
    return EXIT_OK if summary.failed == 0 else EXIT_FAILED


def run_train(args: argparse.Namespace) -> int:
    from xraydesk.spark.train import SparkOptions, train_quick
    from xraydesk.trainer.config import TrainConfig, TrainingMode

    label_map = parse_pairs(args.map, "--map", "LABEL=CLASS")
    extra = {} if args.min_per_class is None else {"min_per_class": args.min_per_class}
    config = TrainConfig(
        data=list(args.data),
        name=args.name,
        mode=TrainingMode.QUICK,
        base=args.base,
        classes=[c.strip() for c in (args.classes or "").split(",") if c.strip()] or None,
        label_map=label_map,
        seed=args.seed,
        size=args.size,
        device=args.device,
        batch=args.batch,
        imbalance=args.imbalance,
        **extra,
    )
    options = SparkOptions(
        compare=[h.strip() for h in args.compare.split(",") if h.strip()],
        precision=args.precision,
        ship_model=args.ship_model,
        output_dir=args.output_dir,
    )
    spark = _session(args, "xraydesk spark train-quick")
    result = train_quick(config, options, spark=spark)
    out = sys.stdout
    print(f"Saved {result.card.label} to {result.card_path} ({result.seconds:.0f} s)", file=out)
    print("Test split (heads on the same features):", file=out)
    for head, m in result.comparison.items():
        auc = "n/a" if m["macro_auc"] is None else f"{m['macro_auc']:.3f}"
        print(
            f"  {head:14} accuracy {m['accuracy']:.3f}  balanced {m['balanced_accuracy']:.3f}  "
            f"macro AUC {auc}  (n={m['n']})",
            file=out,
        )
        for pool, pm in m.get("per_source", {}).items():
            print(f"    {pool}: accuracy {pm['accuracy']:.3f} (n={pm['n']})", file=out)
    for line in result.problems[:10]:
        print(f"  note: {line}", file=out)
    return EXIT_OK
