"""XRayDesk on Apache Spark: a real SparkSession (local[2]) runs the desktop engine.

Needs pyspark (the [spark] extra) and Java 17. Without them these tests skip with the
reason, except in CI (XRAYDESK_REQUIRE_DATA=1 or CI=true), where they fail: CI must run
them. Every probability is compared with the desktop batch engine's on the same files,
both in fp32.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.batch_helpers import write_png, write_truncated_png
from tests.integration.spark_session import local_session
from xraydesk.batch.run import BatchOptions, BatchRun
from xraydesk.classifier import Classifier
from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice
from xraydesk.trust.ood import OODStatistics

FP32 = DeviceChoice("cpu", "fp32", "CPU, fp32")
PER_CLASS = 8  # kermany images per class classified (24 in all)
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def spark():
    yield from local_session("xraydesk-tests", {"spark.sql.shuffle.partitions": "4"})


def _desktop(card_path: Path, files: list[Path]) -> dict[str, dict]:
    """The desktop batch engine's rows (fp32), by path."""
    classifier = Classifier.load(card_path, device=FP32)
    options = BatchOptions(record=False, count_total=False, batch_size=16)
    return {str(r.path): r for r in BatchRun(files, classifier, options).rows()}


def _kermany_subset(shared_data: Path, per_class: int) -> list[tuple[Path, str, str]]:
    """(file, label, patient): the first ``per_class`` images of each class in the manifest."""
    pool = shared_data / "kermany-pediatric"
    chosen: dict[str, list[tuple[Path, str, str]]] = {}
    with open(pool / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            items = chosen.setdefault(row["label"], [])
            if len(items) < per_class:
                items.append((pool / row["path"], row["label"], row["patient"]))
    return [item for items in chosen.values() for item in items]


def _read(spark, output: Path):
    return spark.read.parquet(str(output)).toPandas()


@pytest.mark.skipif(bool(os.environ.get("PYSPARK_PYTHON")), reason="PYSPARK_PYTHON chooses")
def test_local_workers_run_this_interpreter(spark):
    # Not "python3" on PATH, which may lack torch (a venv used without activating it).
    assert spark.sparkContext.pythonExec == sys.executable


def test_classify_matches_the_desktop_engine(spark, shared_data, test_model_path, tmp_path):
    from xraydesk.spark import classify

    files = [f for f, _, _ in _kermany_subset(shared_data, PER_CLASS)]
    table = tmp_path / "files.csv"
    table.write_text("path\n" + "".join(f"{f}\n" for f in files))
    output = tmp_path / "out.parquet"
    summary = classify(table, output, model=test_model_path, spark=spark, precision="fp32")
    assert (summary.rows, summary.classified, summary.failed) == (len(files), len(files), 0)

    got = _read(spark, output)
    card = ModelCard.read(test_model_path)
    p_columns = [f"p_{c}" for c in card.class_ids]
    expected_columns = ["path", "content_hash", "model", "version", "prediction", "indeterminate"]
    assert list(got.columns) == [*expected_columns, *p_columns, "warnings", "error"]
    desktop = _desktop(test_model_path, files)
    assert sorted(got["path"]) == sorted(desktop)
    worst = 0.0
    for row in got.itertuples(index=False):
        mine = row._asdict()
        ref = desktop[mine["path"]]
        assert ref.ok and mine["error"] is None
        assert mine["content_hash"] == ref.content_hash
        assert (mine["model"], mine["version"]) == (card.name, card.version)
        ours = np.array([mine[c] for c in p_columns])
        theirs = np.array([ref.probabilities[c] for c in card.class_ids])
        worst = max(worst, float(np.abs(ours - theirs).max()))
        assert np.abs(ours - theirs).max() < TOLERANCE, mine["path"]
        assert mine["prediction"] == ref.prediction
        assert bool(mine["indeterminate"]) is ref.indeterminate
        assert list(mine["warnings"]) == ref.warning_codes  # gate and OOD, as the desktop
    assert abs(got[p_columns].sum(axis=1) - 1).max() < 1e-9
    print(f"largest probability difference Spark vs desktop (fp32): {worst:.2e}")


def test_bad_files_are_error_rows_and_a_rerun_skips(spark, test_model_path, tmp_path):
    from xraydesk.spark import classify

    folder = tmp_path / "in"
    for i in range(3):
        write_png(folder / f"good{i}.png", seed=i, size=(80, 72))
    (folder / "empty.png").write_bytes(b"")
    (folder / "report.dcm").write_text("this is a text file, not a DICOM\n")
    write_truncated_png(folder / "sub" / "truncated.png")
    (folder / "notes.txt").write_text("not an image, and not named like one: passed over")
    output = tmp_path / "out.parquet"

    first = classify(folder, output, model=test_model_path, spark=spark, precision="fp32")
    got = _read(spark, output).set_index("path")
    bad = {str(folder / "empty.png"), str(folder / "report.dcm"), str(folder / "sub/truncated.png")}
    good = {str(folder / f"good{i}.png") for i in range(3)}
    assert set(got.index) == bad | good
    assert (first.rows, first.classified, first.failed) == (6, 3, 3)
    for path in bad:
        row = got.loc[path]
        assert row["error"] and row["prediction"] is None and np.isnan(row["p_normal"])
    assert "not an image" in got.loc[str(folder / "report.dcm"), "error"]
    for path in good:  # classified: a class, or none named (random pixels: the gate)
        row = got.loc[path]
        assert row["error"] is None and (row["prediction"] is not None or row["indeterminate"])

    again = classify(folder, output, model=test_model_path, spark=spark, precision="fp32")
    assert (again.rows, again.already) == (0, 6)
    assert len(_read(spark, output)) == 6

    write_png(folder / "new.png", seed=42, size=(80, 72))  # only the new content is added
    (folder / "copy-of-good0.png").write_bytes((folder / "good0.png").read_bytes())
    third = classify(folder, output, model=test_model_path, spark=spark, precision="fp32")
    assert (third.rows, third.classified) == (1, 1)
    final = _read(spark, output)
    assert len(final) == 7 and str(folder / "new.png") in set(final["path"])


def test_train_quick_makes_a_model_the_desktop_uses(spark, shared_data, test_model_path, tmp_path):
    from xraydesk.spark import SparkOptions, train_quick
    from xraydesk.trainer.config import TrainConfig

    manifest = tmp_path / "kermany.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "patient"])
        for file, label, patient in _kermany_subset(shared_data, 14):
            writer.writerow([file, label, patient])
    covid = tmp_path / "covid.csv"
    pool = shared_data / "covid19-radiography"
    with open(pool / "manifest.csv", newline="") as fh, open(covid, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "label"])
        taken: dict[str, int] = {}
        for row in csv.DictReader(fh):
            if taken.setdefault(row["label"], 0) < 14:
                taken[row["label"]] += 1
                writer.writerow([pool / row["path"], row["label"]])

    models = tmp_path / "models"
    config = TrainConfig(
        data=[f"kermany={manifest}", f"covid={covid}"],
        name="spark-quick",
        base=str(test_model_path),
        label_map={"bacterial": "pneumonia", "viral": "pneumonia"},
    )
    options = SparkOptions(
        compare=["decision-tree"], reg_grid=(0.1, 0.01), precision="fp32", output_dir=models
    )
    result = train_quick(config, options, spark=spark)
    card = ModelCard.read(result.card_path)  # the desktop's reader: hashes checked
    assert card.class_ids == ["normal", "covid19", "pneumonia"]
    assert card.training["engine"].startswith("xraydesk.spark")
    assert card.training["split"]["grouped_by"] == "patient"
    assert set(card.metrics["test"]["per_source"]) == {"kermany", "covid"}
    assert set(result.comparison) == {"logistic", "decision-tree"}
    assert (models / "spark-quick" / "split.csv").is_file()
    # The same kind of card as `xraydesk train` makes (trainer/trained_card.py): the
    # temperature rule, the base model's population, the small-test warning, and OOD
    # statistics from the executors' features, so the desktop's OOD warning works.
    assert card.metrics["calibration"]["rule"].startswith("applied only when")
    rule = card.operating_rule  # a user's model: its rule from its validation split
    assert rule is not None and rule.chosen_from == "validation_split"
    assert rule.n == card.metrics["validation"]["n"]
    assert card.population == ModelCard.read(test_model_path).population
    assert any(line.startswith("Small test split") for line in card.limitations)
    ood = OODStatistics.from_card(card)
    assert ood is not None and "Spark" in ood.details["computed"]

    # The desktop loads it and classifies the test split; its accuracy is the card's.
    with open(models / "spark-quick" / "split.csv", newline="") as fh:
        test_rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    rows = _desktop(result.card_path, [Path(r["path"]) for r in test_rows])
    correct = [rows[r["path"]].prediction == r["label"] for r in test_rows]
    assert all(rows[r["path"]].ok for r in test_rows)
    accuracy = float(np.mean(correct))
    assert len(test_rows) == card.metrics["test"]["n"]
    assert abs(accuracy - card.metrics["test"]["accuracy"]) <= 1.0 / len(test_rows) + 1e-9
    assert Classifier.load(card, device=FP32).network.fc.out_features == 3
    print(json.dumps({"desktop_test_accuracy": accuracy, "card": card.metrics["test"]["accuracy"]}))
