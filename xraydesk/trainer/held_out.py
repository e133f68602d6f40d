"""Leave-one-source-out evaluation: train on every pool but one, then test on all of it.

A test split drawn from the same pools as the training images flatters a model: it has
seen the same hospitals, scanners, markers and patient ages. Holding a whole pool out
of training and testing on every image of it measures what users at another hospital
would see. Each held-out run is an ordinary engine run (same settings, split, seed and
checkpoints, hence resumable) on the other pools, saved in its own folder; its result
is kept beside it, so a rerun skips the pools already done.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk.classifier import Classifier
from xraydesk.errors import Cancelled
from xraydesk.model.card import ModelCard
from xraydesk.trainer.checkpoint import RunDir
from xraydesk.trainer.config import TrainConfig
from xraydesk.trainer.dataset import DatasetError, DataSource, Sample, read_source
from xraydesk.trainer.forward import run_module
from xraydesk.trainer.metrics import evaluate
from xraydesk.trainer.progress import ProgressCallback, TrainingError
from xraydesk.trainer.training import train_model

RESULT_FILE = "held_out.json"
# Per-image logits, labels and class ids of the held-out pool: what risk-coverage tables
# and operating rules (indeterminate thresholds, calibration under shift) are fitted on.
PREDICTIONS_FILE = "predictions.npz"


def pool_of(spec: str) -> str:
    return DataSource.parse(spec).pool


def held_out_config(config: TrainConfig, pool: str, epochs: int | None = None) -> TrainConfig:
    """The config of the run that leaves ``pool`` out: the other pools, same settings."""
    others = [spec for spec in config.data if pool_of(spec) != pool]
    if len(others) == len(config.data):
        raise TrainingError(f"{pool!r} is not one of the pools of {config.name!r}")
    return replace(
        config,
        data=others,
        name=f"{config.name}-without-{pool}",
        epochs=epochs or config.epochs,
        description=f"{config.name} trained without {pool}, to test on {pool}",
    )


def source_samples(spec: str, config: TrainConfig) -> list[Sample]:
    """Every image of one pool with a label among the config's classes (after its map)."""
    samples = []
    for s in read_source(DataSource.parse(spec)):
        label = config.label_map.get(s.label, s.label)
        if label and (config.classes is None or label in config.classes):
            samples.append(replace(s, label=label))
    return samples


def evaluate_on_source(
    card_path: Path,
    samples: Sequence[Sample],
    device: str,
    batch: int = 64,
    predictions: Path | None = None,
) -> dict[str, Any]:
    """A saved model's metrics on the given images (temperature applied); images that
    fail to load are left out and counted. ``predictions`` keeps the raw logits there."""
    classifier = Classifier.load(card_path, device=device)
    ids = classifier.class_ids
    y = np.array([ids.index(s.label) for s in samples], dtype=np.int64)
    logits, ok = run_module(
        classifier.network,
        samples,
        range(len(samples)),
        classifier.preprocessing,
        classifier.device,
        batch,
    )
    result = evaluate(logits[ok], y[ok], ids, classifier.card.temperature)
    result["unreadable"] = int((~ok).sum())
    if predictions is not None:
        predictions.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            predictions,
            logits=logits[ok].astype(np.float32),
            labels=y[ok],
            class_ids=np.array(ids),
            temperature=np.float32(classifier.card.temperature),
        )
    return result


def train_within(
    config: TrainConfig,
    output_dir: Path,
    progress: ProgressCallback | None = None,
    deadline: threading.Event | None = None,
) -> Path:
    """Train (resuming a killed run); when ``deadline`` is set mid-run, the run stops and
    finishes with its best epoch so far. Returns the saved card."""
    try:
        resume = RunDir(config.name).exists()
        return train_model(
            config, progress, deadline, resume=resume, output_dir=output_dir
        ).card_path
    except Cancelled:
        if deadline is None or not deadline.is_set():
            raise
    return train_model(
        config, progress, None, resume=True, finish_early=True, output_dir=output_dir
    ).card_path


def leave_one_source_out(
    config: TrainConfig,
    work: Path,
    pools: Sequence[str] | None = None,
    epochs: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Per held-out pool: train on the others (resuming a killed run), test on all of it.

    ``work`` holds one folder per pool with the held-out model and its result; the run
    folders (checkpoints) live under the engine's data folder as for any run. A pool
    that cannot be held out (the others lack one of the classes) is reported, not fatal.
    ``cancel`` is a deadline: a run it stops finishes with its best epoch so far.
    """
    all_pools = [pool_of(spec) for spec in config.data]
    chosen = list(pools) if pools is not None else all_pools
    result: dict[str, Any] = {
        "method": "leave one source out: trained on the other pools with the same settings "
        "and split seed, tested on every image of the held-out pool",
        "epochs": epochs or config.epochs,
        "size": config.size,
        "sources": {},
    }
    if len(all_pools) < 2:
        result["note"] = "one pool only: no source can be held out"
        return result
    for pool in chosen:
        folder = Path(work) / pool
        done = folder / RESULT_FILE
        if done.is_file():
            result["sources"][pool] = json.loads(done.read_text())
            continue
        held = held_out_config(config, pool, epochs)
        spec = next(s for s in config.data if pool_of(s) == pool)
        card_path = folder / f"{held.name}.json"
        try:
            if not card_path.is_file():
                train_within(held, folder, progress, cancel)
        except (DatasetError, TrainingError) as exc:
            result["sources"][pool] = {"skipped": str(exc)}
            continue
        metrics = evaluate_on_source(
            card_path,
            source_samples(spec, config),
            config.device,
            predictions=folder / PREDICTIONS_FILE,
        )
        own = ModelCard.read(card_path).metrics.get("test", {})
        row = {
            "trained_on": [p for p in all_pools if p != pool],
            # the same model on the test split of the pools it trained on: the fair baseline
            # (same epochs and data size) for its accuracy on the pool it never saw
            "own_test_accuracy": own.get("accuracy"),
            **{k: v for k, v in metrics.items() if k != "roc"},
        }
        folder.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps(row, indent=2) + "\n")
        result["sources"][pool] = row
    return result
