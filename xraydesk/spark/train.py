"""``train_quick``: quick mode (frozen backbone, linear head) with the work done by Spark.

The seed project extracted CNN features with PySpark and compared logistic regression,
random forest and decision tree heads in MLlib. Here:

1. the driver reads the sources as ``xraydesk train`` does (folders or manifests, label
   map, class list; no file is opened on the driver);
2. the executors hash every file; the driver drops duplicates and conflicting labels and
   splits by patient (``trainer.split``: the same split the desktop would make);
3. from scratch, batch norm is calibrated on the driver from training images, as quick
   mode does; the backbone goes to the executors like a model for ``classify``;
4. the executors extract the pooled features (the desktop's loader and preprocessing);
5. MLlib fits a multinomial logistic regression, its strength chosen by validation
   log-loss; the coefficients (MLlib returns them on the raw feature scale) become the
   network's last linear layer (``trainer.quick.write_head``), so the desktop, its
   batch engine and Grad-CAM use the model unchanged;
6. the temperature is fitted on validation, metrics computed on test (per pool when
   there are several) with ``trainer.metrics``; random forest and decision tree heads can
   be trained on the same features for comparison (their metrics go into the card; only
   the logistic head can become the network's layer);
7. the model is saved with its card, split and evaluation as ``xraydesk train`` saves one.

Data must be on a path the driver and the executors both see (a shared mount, /dbfs).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk import paths
from xraydesk.errors import XRayDeskError
from xraydesk.model.card import ClassInfo, ModelCard
from xraydesk.model.device import select_device
from xraydesk.model.operating_rule import OperatingRule
from xraydesk.model.saving import save_model
from xraydesk.spark.classify import model_ref
from xraydesk.spark.executor import feature_frames, hash_frames
from xraydesk.spark.session import get_session
from xraydesk.trainer.config import TrainConfig, TrainingMode
from xraydesk.trainer.dataset import (
    DatasetReport,
    Sample,
    check_dataset,
)
from xraydesk.trainer.metrics import (
    choose_temperature,
    evaluate,
    negative_log_likelihood,
    softmax,
)
from xraydesk.trainer.ood_stats import MAX_TRAIN_IMAGES, statistics_from_features
from xraydesk.trainer.operating_choice import validation_rule
from xraydesk.trainer.quick import Head, calibrate_batchnorm, write_head
from xraydesk.trainer.split import (
    assign_splits,
    check_split,
    split_summary,
    write_split,
)
from xraydesk.trainer.trained_card import TrainedModel, save_trained_model, trained_card
from xraydesk.trainer.training import prepare_network, refuse_taken_name, resolve_base
from xraydesk.trust.calibration import add_calibration_limitations
from xraydesk.trust.ood import OODStatistics

ENGINE = "xraydesk.spark.train-quick/1"
HEADS = ("logistic", "random-forest", "decision-tree")
# MLlib's L2 strength (regParam), falling: sklearn's C is about 1 / (regParam * n_train).
REG_GRID = (0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4)
TREES, DEPTH = 100, 8


@dataclass
class SparkTrainResult:
    card_path: Path
    card: ModelCard
    test: dict[str, Any]
    validation: dict[str, Any]
    comparison: dict[str, dict[str, Any]]  # head -> test metrics, logistic included
    seconds: float
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SparkOptions:
    """What only the Spark trainer needs beyond the trainer's ``TrainConfig``."""

    compare: Sequence[str] = ()  # extra MLlib heads: "random-forest", "decision-tree"
    precision: str | None = None  # the executors' runtime precision (None: as measured)
    reg_grid: Sequence[float] = REG_GRID  # logistic regularisation tried on validation
    ship_model: bool | None = None  # send the weights to executors (None: when not shared)
    output_dir: Path | None = None  # None: the user's model library


def train_quick(
    config: TrainConfig,
    options: SparkOptions | None = None,
    *,
    spark: Any = None,
    master: str | None = None,
) -> SparkTrainResult:
    """Train a quick-mode model on Spark and save it (the user library, or ``output_dir``).

    ``config`` is the trainer's, as ``xraydesk train`` takes it (its mode is quick here,
    and ``base`` is a model name or card path, "scratch", or None for the default bundled
    model). Raises ``XRayDeskError`` subclasses for bad settings or data."""
    started = time.perf_counter()
    options = options or SparkOptions()
    compare, output_dir = options.compare, options.output_dir
    unknown = [h for h in compare if h not in HEADS]
    if unknown:
        raise XRayDeskError(f"unknown head(s) {unknown}: choose from {', '.join(HEADS[1:])}")
    config = replace(config, mode=TrainingMode.QUICK, data=[str(d) for d in config.data])
    name, base, device, seed = config.name, config.base, config.device, config.seed
    config.validate()
    refuse_taken_name(name, output_dir)
    base_card = resolve_base(base)
    spark = spark if spark is not None else get_session(master, "xraydesk train-quick")
    clock = _Stages()
    report = _checked_data(spark, config)
    clock.mark("hashing")
    samples = report.samples
    splits = assign_splits(samples, config.fractions, seed)
    check_split(samples, splits, report.classes)
    network, prep = prepare_network(config, report.classes, base_card)
    if base_card is None:  # a random backbone needs batch-norm statistics (quick mode's way)
        train_idx = [i for i, sp in enumerate(splits) if sp == "train"]
        calibrate_batchnorm(network, samples, train_idx, prep, select_device(device), seed)
        clock.mark("batchnorm")
    work = Path(tempfile.mkdtemp(prefix="xraydesk-spark-backbone-"))
    try:
        backbone = _backbone_card(network, prep, report, name, work)
        ref = model_ref(
            spark, backbone, options.ship_model, device, options.precision, config.batch
        )
        table, failed = _features(spark, ref, samples, splits, report.classes)
        clock.mark("features")
        fit = _fit(
            spark, table, report.classes, samples, splits, config.imbalance, seed, options.reg_grid
        )
        clock.mark("logistic")
        comparison = {"logistic": _brief(fit.test)}
        for head in compare:
            if head != "logistic":
                comparison[head] = _brief(_other_head(head, table, report.classes, seed, fit))
                clock.mark(head)
        ood = _ood_statistics(table, len(report.classes), seed)
        table.unpersist()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_head(network, fit.head)
    problems = report.problems() + [f"{p}: {c} (left out of training)" for p, c in failed]
    seconds = time.perf_counter() - started
    fit.stages = clock.seconds
    card = _card(config, report, base_card, prep, fit, comparison, samples, splits, seconds, spark)
    add_calibration_limitations(card.limitations, card.metrics)
    if ood is not None:
        ood.store(card)
    directory = Path(output_dir) if output_dir is not None else paths.user_models_dir()
    card_path = save_trained_model(
        directory,
        card,
        network,
        lambda target: write_split(target, samples, splits),
        fit.history,
        {"test": fit.test, "validation": fit.validation},
        problems,
    )
    return SparkTrainResult(
        card_path=card_path,
        card=ModelCard.read(card_path, source="user" if output_dir is None else "file"),
        test=fit.test,
        validation=fit.validation,
        comparison=comparison,
        seconds=seconds,
        problems=problems,
    )


# -- data --------------------------------------------------------------------------------------


def _checked_data(spark: Any, config: TrainConfig) -> DatasetReport:
    """The desktop's ``check_dataset``, with the hashing on the executors (decoding happens
    with the features: a file that fails there is left out and listed in the problems)."""
    report = check_dataset(
        config.data,
        label_map=config.label_map,
        classes=config.classes or None,
        class_names=config.class_names,
        min_per_class=config.min_per_class,
        verify=False,
        hash_files=lambda paths: _hashes(spark, [str(p) for p in paths]),
    )
    report.raise_if_refused()
    return report


def _partitions(spark: Any, rows: int) -> int:
    """Enough tasks to keep every core busy and to spread the slow ones (~256 files each)."""
    return max(spark.sparkContext.defaultParallelism, math.ceil(rows / 256))


def _hashes(spark: Any, files: list[str]) -> list[tuple[str, str | None]]:
    """(sha256, read error) per file, computed on the executors."""
    import pandas as pd

    if not files:
        return []
    frame = spark.createDataFrame(pd.DataFrame({"row": range(len(files)), "path": files}))
    frame = frame.repartition(_partitions(spark, len(files)))
    done = frame.mapInPandas(hash_frames, "row long, content_hash string, error string").collect()
    result: list[tuple[str, str | None]] = [("", "not processed")] * len(files)
    for r in done:
        result[r["row"]] = (r["content_hash"] or "", r["error"])
    return result


# -- features and heads ------------------------------------------------------------------------


def _backbone_card(
    network: Any, prep: Any, report: DatasetReport, name: str, directory: Path
) -> ModelCard:
    """The backbone as a model file the executors load like any other (hash-checked)."""
    card = ModelCard(
        name=f"{name}-backbone",
        version="features",
        classes=[ClassInfo(c, report.class_names[c]) for c in report.classes],
        preprocessing=prep,
        weights_file="",
        weights_sha256="",
        description="Backbone for feature extraction during train-quick (temporary).",
    )
    return ModelCard.read(save_model(network.to("cpu").float().eval(), card, directory))


def _features(
    spark: Any, ref: Any, samples: list[Sample], splits: list[str], classes: list[str]
) -> tuple[Any, list[tuple[Path, str]]]:
    """A cached DataFrame (row, label, split, pool, features vector) of the usable images,
    and the images whose decoding failed on the executors."""
    import pandas as pd
    from pyspark.ml.functions import array_to_vector

    index = {c: k for k, c in enumerate(classes)}
    frame = pd.DataFrame(
        {
            "row": range(len(samples)),
            "path": [str(s.path) for s in samples],
            "label": [float(index[s.label]) for s in samples],
            "split": splits,
            "pool": [s.source for s in samples],
        }
    )
    schema = (
        "row long, label double, split string, pool string, features array<float>, error string"
    )
    source = spark.createDataFrame(frame).repartition(_partitions(spark, len(samples)))
    extracted = source.mapInPandas(lambda frames: feature_frames(frames, ref), schema).cache()
    failed = [
        (samples[r["row"]].path, r["error"])
        for r in extracted.where("error IS NOT NULL").select("row", "error").collect()
    ]
    table = extracted.where("error IS NULL").withColumn("features", array_to_vector("features"))
    return table.drop("error").cache(), failed


@dataclass
class _Fit:
    head: Head
    reg_param: float
    temperature: float
    calibration: dict[str, Any]
    test: dict[str, Any]
    validation: dict[str, Any]
    history: list[dict[str, float]]
    weights: dict[int, float]
    stages: dict[str, float] = field(default_factory=dict)
    rule: OperatingRule | None = None  # from the validation split, marked as such


class _Stages:
    """Seconds per step, for the card (where a cluster run spends its time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._last, 2)
        self._last = now


def _fit(
    spark: Any,
    table: Any,
    classes: list[str],
    samples: list[Sample],
    splits: list[str],
    imbalance: str,
    seed: int,
    grid: Sequence[float],
) -> _Fit:
    """Multinomial logistic regression with MLlib; the strength chosen by validation NLL."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.sql import functions as F

    train = table.where("split = 'train'")
    counts = {int(r["label"]): int(r["count"]) for r in train.groupBy("label").count().collect()}
    n_train = sum(counts.values())
    weights = {k: n_train / (len(classes) * n) for k, n in counts.items()}
    if imbalance == "none":
        weights = dict.fromkeys(counts, 1.0)
    weight_of = F.create_map(*(x for k, w in weights.items() for x in (F.lit(float(k)), F.lit(w))))
    train = train.withColumn("weight", weight_of[F.col("label")]).cache()
    val = _rows(table, "val")
    best: tuple[float, Any, float] | None = None
    history: list[dict[str, float]] = []
    for reg in grid:
        lr = LogisticRegression(
            family="multinomial",
            regParam=float(reg),
            elasticNetParam=0.0,
            standardization=True,
            maxIter=200,
            tol=1e-7,
            weightCol="weight",
        )
        fitted = lr.fit(train)
        logits, y, _ = _margins(fitted, val)
        probs = softmax(logits)
        nll = negative_log_likelihood(probs, y)
        history.append(
            {
                "regParam": float(reg),
                "C": 1.0 / (float(reg) * n_train),
                "val_nll": nll,
                "val_accuracy": float((probs.argmax(axis=1) == y).mean()),
                "iterations": int(fitted.summary.totalIterations),
            }
        )
        if best is None or nll < best[0]:
            best = (nll, fitted, float(reg))
        elif len(history) >= 3 and history[-3]["val_nll"] < history[-2]["val_nll"] < nll:
            break  # worse twice past the best: weaker regularisation only overfits
    train.unpersist()
    assert best is not None
    _, model, reg = best
    head = Head(
        weight=np.array(model.coefficientMatrix.toArray(), dtype=np.float64),
        bias=np.array(model.interceptVector.toArray(), dtype=np.float64),
        C=1.0 / (reg * n_train),
        search=history,
    )
    val_logits, y_val, val_pools = _margins(model, val)
    test_logits, y_test, test_pools = _margins(model, _rows(table, "test"))
    temperature, calibration = choose_temperature(val_logits, y_val)
    test = evaluate(test_logits, y_test, classes, temperature, sources=test_pools, curves=True)
    raw = evaluate(test_logits, y_test, classes, 1.0)
    test["uncalibrated"] = {"ece": raw["ece"], "nll": raw["nll"]}
    validation = evaluate(val_logits, y_val, classes, temperature, sources=val_pools, curves=True)
    rule = validation_rule(val_logits, y_val, temperature, sorted(set(val_pools)))
    return _Fit(head, reg, temperature, calibration, test, validation, history, weights, rule=rule)


def _rows(table: Any, split: str) -> Any:
    return table.where(f"split = '{split}'")


def _margins(model: Any, frame: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Logits (MLlib's rawPrediction: the margins), labels and pools, in row order."""
    rows = model.transform(frame).select("row", "rawPrediction", "label", "pool").collect()
    rows.sort(key=lambda r: r["row"])
    logits = np.array([r["rawPrediction"].toArray() for r in rows], dtype=np.float64)
    labels = np.array([int(r["label"]) for r in rows], dtype=np.int64)
    return logits.reshape(len(rows), -1), labels, [r["pool"] for r in rows]


def _other_head(head: str, table: Any, classes: list[str], seed: int, fit: _Fit) -> dict:
    """Test metrics of a tree head on the same features and split (the seed project's
    comparison); its probabilities are evaluated as they are (no temperature)."""
    from pyspark.ml.classification import DecisionTreeClassifier, RandomForestClassifier

    if head == "random-forest":
        learner: Any = RandomForestClassifier(numTrees=TREES, maxDepth=DEPTH, seed=seed)
    else:
        learner = DecisionTreeClassifier(maxDepth=DEPTH, seed=seed)
    model = learner.fit(_rows(table, "train"))
    rows = model.transform(_rows(table, "test")).select("row", "probability", "label", "pool")
    got = sorted(rows.collect(), key=lambda r: r["row"])
    probs = np.array([r["probability"].toArray() for r in got], dtype=np.float64)
    probs = probs.reshape(len(got), len(classes))
    y = np.array([int(r["label"]) for r in got], dtype=np.int64)
    logits = np.log(np.clip(probs, 1e-12, 1.0))
    return evaluate(logits, y, classes, 1.0, sources=[r["pool"] for r in got])


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "nll", "ece")
    out = {k: metrics[k] for k in keys}
    if "per_source" in metrics:
        out["per_source"] = {
            pool: {k: m[k] for k in ("n", "accuracy", "macro_auc")}
            for pool, m in metrics["per_source"].items()
        }
    return out


# -- the model ---------------------------------------------------------------------------------


def _card(
    config: TrainConfig,
    report: DatasetReport,
    base: ModelCard | None,
    prep: Any,
    fit: _Fit,
    comparison: dict[str, Any],
    samples: list[Sample],
    splits: list[str],
    seconds: float,
    spark: Any,
) -> ModelCard:
    model = TrainedModel(
        config=config,
        classes=report.classes,
        names=[report.class_names[c] for c in report.classes],
        prep=prep,
        temperature=fit.temperature,
        calibration=fit.calibration,
        test=fit.test,
        validation=fit.validation,
        images=len(samples),
        pools=", ".join(s.pool for s in report.sources),
        how="`xraydesk spark train-quick`",
        base=base,
        operating_rule=fit.rule,
    )
    return trained_card(
        model,
        {
            "engine": ENGINE,
            "mode": "quick",
            "settings": config.to_dict(),
            "spark": {"master": spark.sparkContext.master, "version": spark.version},
            "seconds": round(seconds, 1),
            "data": report.summary(),
            "split": split_summary(samples, splits, config.fractions, config.seed),
            "details": {
                "head": "logistic regression (Spark MLlib, multinomial, L2, standardised)",
                "regParam": fit.reg_param,
                "C": fit.head.C,
                "class_weights": {report.classes[k]: w for k, w in sorted(fit.weights.items())},
                "batchnorm_calibrated": base is None,
                "seconds_by_stage": fit.stages,
                "comparison": comparison,
            },
            "history": fit.history,
        },
    )


def _ood_statistics(table: Any, num_classes: int, seed: int) -> OODStatistics | None:
    """The OOD statistics from the features the executors already made (a seeded sample
    of at most MAX_TRAIN_IMAGES training rows, every validation row)."""
    train = table.where("split = 'train'")
    total = train.count()
    if total > MAX_TRAIN_IMAGES:
        train = train.sample(fraction=min(1.0, 1.1 * MAX_TRAIN_IMAGES / total), seed=seed)
    rows = train.select("label", "features").limit(MAX_TRAIN_IMAGES).collect()
    val = _rows(table, "val").select("features").collect()
    if not rows or not val:
        return None
    return statistics_from_features(
        np.array([r["features"].toArray() for r in rows]),
        np.array([int(r["label"]) for r in rows], dtype=np.int64),
        np.array([r["features"].toArray() for r in val]),
        num_classes,
        "at training time (Spark executors' features, xraydesk.spark.train)",
    )
