"""What a Spark Python worker runs for ``classify``, without Spark: Arrow batches in and out.

The rows must be the desktop batch engine's for the same files (same verdict through
``trust.verdict.decide_all``); the worker must not import torch or pandas for a model on
an exported graph (each costs seconds per worker process); the side job that readies the
workers loads the model once per process. The real local Spark runs are in
tests/integration/test_spark*.py.
"""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.batch_helpers import write_png
from xraydesk.batch.prepare import content_hash
from xraydesk.batch.run import BatchOptions, BatchRun
from xraydesk.classifier import Classifier
from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice

pa = pytest.importorskip("pyarrow")

FP32 = DeviceChoice("cpu", "fp32", "CPU, fp32")


def _films(shared_data: Path, count: int) -> list[Path]:
    pool = shared_data / "kermany-pediatric"
    with open(pool / "manifest.csv", newline="") as fh:
        return [pool / row["path"] for row in itertools.islice(csv.DictReader(fh), count)]


def _batches(paths: list[str], size: int) -> list:
    return [pa.record_batch({"path": paths[k : k + size]}) for k in range(0, len(paths), size)]


@pytest.fixture
def fresh_models(monkeypatch):
    from xraydesk.spark import worker_model

    monkeypatch.setattr(worker_model, "_MODELS", {})  # this test's model only
    return worker_model


def test_arrow_rows_are_the_desktop_engines(fresh_models, shared_data, test_model_path, tmp_path):
    from xraydesk.spark.worker_classify import arrow_schema, classify_batches

    films = _films(shared_data, 7)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    paths = [str(f) for f in films[:4]] + [str(empty)] + [str(f) for f in films[4:]]
    card = ModelCard.read(test_model_path)
    ref = fresh_models.ModelRef.of(card, device="cpu", precision="fp32", batch_size=4)
    out = list(classify_batches(_batches(paths, 3), ref))
    assert len(out) == 3 and all(b.schema == arrow_schema(card.class_ids) for b in out)
    got = pa.Table.from_batches(out).to_pylist()
    assert [r["path"] for r in got] == paths  # input order kept within each batch

    classifier = Classifier.load(card, device=FP32)
    options = BatchOptions(record=False, count_total=False, batch_size=4)
    desktop = {str(r.path): r for r in BatchRun(paths, classifier, options).rows()}
    for row in got:
        ref_row = desktop[row["path"]]
        assert row["content_hash"] == ref_row.content_hash
        assert (row["model"], row["version"]) == (card.name, card.version)
        assert row["error"] == ref_row.error
        if ref_row.error:
            assert row["prediction"] is None and row["p_normal"] is None
            continue
        assert row["prediction"] == ref_row.prediction
        assert row["indeterminate"] is ref_row.indeterminate
        assert row["warnings"] == ref_row.warning_codes
        ours = np.array([row[f"p_{c}"] for c in card.class_ids])
        theirs = np.array([ref_row.probabilities[c] for c in card.class_ids])
        assert np.abs(ours - theirs).max() < 1e-4, row["path"]
    assert desktop[str(empty)].error and got[4]["error"] == desktop[str(empty)].error


def test_known_content_and_walked_non_images_are_left_out(fresh_models, test_model_path, tmp_path):
    from xraydesk.spark.worker_classify import classify_batches

    seen, new = write_png(tmp_path / "seen.png", seed=1), write_png(tmp_path / "new.png", seed=2)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image, and not named like one")
    known = fresh_models.KnownRows.build([content_hash(seen)], [])
    ref = fresh_models.ModelRef.of(ModelCard.read(test_model_path), device="cpu", precision="fp32")
    batch = pa.record_batch({"path": [str(seen), str(notes), str(new)]})
    (out,) = classify_batches([batch], ref, known, walked=True)
    assert out.column("path").to_pylist() == [str(new)]


def test_a_worker_imports_neither_torch_nor_pandas():
    """Every worker process imports these; torch costs seconds per worker where the model
    runs on an exported graph (``xraydesk.spark`` used to import its trainer)."""
    code = (
        "import sys, xraydesk.spark, xraydesk.spark.classify, xraydesk.spark.warm,"
        " xraydesk.spark.worker_classify;"
        "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    from xraydesk.spark import SparkOptions, train_quick  # still there, on first use

    assert callable(train_quick) and SparkOptions.__name__ == "SparkOptions"


def test_warming_up_loads_the_model_once_per_process(fresh_models, test_model_path):
    from xraydesk.spark.worker_classify import warm_up

    ref = fresh_models.ModelRef.of(
        ModelCard.read(test_model_path), device="cpu", precision="fp32", batch_size=4
    )
    assert warm_up(ref) == ""
    model = fresh_models.loaded_model(ref)
    assert warm_up(ref) == "" and fresh_models.loaded_model(ref) is model
    broken = fresh_models.ModelRef(ref.card, "0" * 64, ref.integrity, device="cpu")
    assert "differs from the one the driver read" in warm_up(broken)  # said, not raised


def test_no_side_job_where_spark_does_not_reuse_its_workers():
    from xraydesk.spark import warm

    conf = {"spark.python.worker.reuse": "false"}
    context = SimpleNamespace(getConf=lambda: SimpleNamespace(get=lambda k, d=None: conf.get(k, d)))
    assert warm.start(SimpleNamespace(sparkContext=context), None) is None


def test_task_cores_outside_a_task_is_every_core():
    from xraydesk.spark.worker_model import task_cores

    assert task_cores() == 0
