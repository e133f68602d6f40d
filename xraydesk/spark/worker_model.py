"""The model a Spark Python worker runs, loaded once per process, and what it is told.

``loaded_model`` loads the driver's model (``ModelRef``: keyed by the card's path and its
weights' sha256, checked again against what the driver saw) on the runtime the desktop
batch engine would choose (``runtime.select``, in its batch mode: the exported graph
where one was measured faithful), with the task's share of the cores, and keeps it for
every later task (Spark reuses its Python workers). ``KnownRows``: what the output
already holds, so a re-run skips it. No pyspark import except to find shipped files and
the task's core count, no torch unless the chosen runtime is torch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk.batch.batch_model import BatchModel
from xraydesk.batch.rows import ResultRow
from xraydesk.batch.threads import torch_threads
from xraydesk.classifier import Classifier
from xraydesk.errors import ModelError
from xraydesk.model.card import ModelCard
from xraydesk.model.device import select_device
from xraydesk.runtime.batch_mode import BATCH_MODE
from xraydesk.runtime.select import select_backend
from xraydesk.spark.worker_memory import worker_runtime
from xraydesk.trust.ood import OODStatistics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """How a worker finds the driver's model: a card path it can read (a shared or local
    path), or the card's file name when the driver shipped card and weights with
    ``SparkContext.addFile``; plus the hashes the driver checked."""

    card: str
    weights_sha256: str
    integrity: str  # the card's integrity hash as the driver read it
    shipped: bool = False
    device: str = "auto"
    # "fp32" or "auto", passed to the worker's model as data (None: the worker's own
    # XRAYDESK_PRECISION); never written into the worker's environment
    precision: str | None = None
    batch_size: int = 32

    @classmethod
    def of(cls, card: ModelCard, **options: Any) -> ModelRef:
        assert card.path is not None, "the model card must have been read from a file"
        integrity = card.to_dict()["integrity"]["sha256"]
        return cls(str(card.path), card.weights_sha256, integrity, **options)


@dataclass
class LoadedModel:
    classifier: Classifier
    batch: BatchModel
    ood: OODStatistics | None = None  # decoded once per process; None: the card has none

    def features(self, tensors: list[np.ndarray]) -> np.ndarray:
        """Pooled backbone features (N, D) float32, in the classifier's precision."""
        return self.classifier.logits_and_features(np.stack(tensors))[1]


_MODELS: dict[tuple[str, str, str, str | None], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def loaded_model(ref: ModelRef) -> LoadedModel:
    """This process's copy of the model, loaded on first use (one model kept at a time)."""
    path = _card_path(ref)
    key = (path, ref.weights_sha256, ref.device, ref.precision)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS.clear()
            cores = task_cores()
            card = ModelCard.read(path)
            integrity = card.to_dict()["integrity"]["sha256"]
            if card.weights_sha256 != ref.weights_sha256 or integrity != ref.integrity:
                raise ModelError(
                    f"{path}: this model card differs from the one the driver read (weights "
                    "or meaning changed); every executor must see the same model"
                )
            # the desktop batch engine's runtime, in its batch mode (Classifier.load would
            # also compile the viewer's latency twin, which no worker uses); checks the
            # weights' sha256; an exported runtime gets the task's cores only
            device = select_device(ref.device, ref.precision)
            runtime = worker_runtime()
            if runtime is None:
                unpin_openvino()
            backend = select_backend(
                card, device, runtime, threads=cores, precision=ref.precision, mode=BATCH_MODE
            )
            classifier = Classifier(None, card, device, backend)
            if cores:  # torch (where the runtime is torch): the task's cores, not all
                torch_threads(cores)
            batch = BatchModel(classifier, True, ref.batch_size)
            _MODELS[key] = LoadedModel(classifier, batch, OODStatistics.from_card(card))
        return _MODELS[key]


def unpin_openvino() -> None:
    """Let the OS place this worker's OpenVINO threads. OpenVINO pins each stream's thread
    to a core, counting from the first core the process may use; every Spark worker is a
    process of its own with one stream, so all of a machine's workers ran their inference
    on core 0. Measured (Intel Xeon family 6 model 207 with AMX, 2 cores, two processes
    as local[2]'s workers, chest-3class bf16, 32-image batches): 29 images/s together
    pinned, 53 unpinned, and each image's CPU time doubled when pinned (two models taking
    turns on one core's cache). Set on the process's one OpenVINO core before any graph
    is compiled; a graph read back from the compiled cache follows it too."""
    from xraydesk.runtime.openvino_backend import core, installed

    if not installed():
        return
    try:
        core().set_property("CPU", {"ENABLE_CPU_PINNING": False})
    except Exception as exc:  # an OpenVINO without the property: run as it is
        log.debug("OpenVINO's CPU pinning left on: %s", exc)


def _card_path(ref: ModelRef) -> str:
    if not ref.shipped:
        return ref.card
    from pyspark import SparkFiles

    return SparkFiles.get(ref.card)


def task_cores() -> int:
    """One model thread per core Spark gives the task (spark.task.cpus), never all cores:
    every worker process on the machine runs a model at the same time (two threads per
    worker on a 2-core local[2] would each wait at every layer for a descheduled thread).
    0 outside a Spark task: every core."""
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
    except ImportError:
        context = None
    if context is None:
        return 0
    return max(1, int(context.cpus()))


# -- which rows a re-run skips ---------------------------------------------------------------


@dataclass
class KnownRows:
    """Rows already in the output for this model: content hashes (sorted raw sha256s,
    32 bytes each, so a million take 32 MB) and the paths of rows that have no hash
    (files that could not be read). Quacks like the results store for ``Preparer``."""

    hashes: np.ndarray = field(default_factory=lambda: np.array([], dtype="S32"))
    failed_paths: frozenset[str] = frozenset()

    @classmethod
    def build(cls, hashes: Iterable[str], failed_paths: Iterable[str]) -> KnownRows:
        raw = np.array(sorted({bytes.fromhex(h) for h in hashes if h}), dtype="S32")
        return cls(raw, frozenset(failed_paths))

    def __len__(self) -> int:
        return len(self.hashes) + len(self.failed_paths)

    def has_hash(self, sha256: str) -> bool:
        if not len(self.hashes):
            return False
        digest = np.array([bytes.fromhex(sha256)], dtype="S32")
        index = int(np.searchsorted(self.hashes, digest)[0])
        return index < len(self.hashes) and self.hashes[index] == digest[0]

    def known_row(self, _key: str, sha256: str) -> ResultRow | None:
        """``ResultStore.known_row``'s contract: a reused row for known content, else None."""
        if self.has_hash(sha256):
            return ResultRow(path=Path(), model="", content_hash=sha256, reused=True)
        return None


def result_columns(class_ids: list[str]) -> list[str]:
    return [
        "path",
        "content_hash",
        "model",
        "version",
        "prediction",
        "indeterminate",
        *(f"p_{cid}" for cid in class_ids),
        "warnings",
        "error",
    ]
