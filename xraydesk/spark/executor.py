"""What runs inside Spark's Python workers: the desktop engine, one model per process.

Each worker process loads the model once (``loaded_model``: keyed by the card's path and
its weights' sha256, checked again against what the driver saw) and then classifies
Arrow batches of paths with the desktop batch engine's own parts: ``batch.prepare.Preparer``
(content hash, loader, preprocessing; a bad file becomes an error row naming the cause)
and ``batch.batch_model.BatchModel`` (the folded network the desktop batch runs). The
functions take and yield pandas frames, so ``mapInPandas`` calls them and a test can too.
Nothing here imports pyspark except to find shipped files and the task's core count.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlparse

import numpy as np
import torch

from xraydesk.batch.batch_model import BatchModel
from xraydesk.batch.prepare import Prepared, Preparer
from xraydesk.batch.rows import ResultRow, display_text
from xraydesk.classifier import Classifier
from xraydesk.errors import ModelError
from xraydesk.files import read_error, sha256_file
from xraydesk.imaging.discover import IMAGE_EXTENSIONS
from xraydesk.imaging.loader import UNRECOGNISED
from xraydesk.model.card import ModelCard
from xraydesk.spark.worker_memory import worker_runtime
from xraydesk.trust.ood import OODStatistics
from xraydesk.trust.verdict import decide_all

log = logging.getLogger(__name__)

LOCAL_SCHEMES = ("", "file")
NOT_SCANNED = "empty file (0 bytes), or it could not be read"


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
            cores = _use_task_cores()
            card = ModelCard.read(path)
            integrity = card.to_dict()["integrity"]["sha256"]
            if card.weights_sha256 != ref.weights_sha256 or integrity != ref.integrity:
                raise ModelError(
                    f"{path}: this model card differs from the one the driver read (weights "
                    "or meaning changed); every executor must see the same model"
                )
            # checks the weights' sha256; an exported runtime gets the task's cores only
            classifier = Classifier.load(
                card,
                device=ref.device,
                runtime=worker_runtime(),
                threads=cores,
                precision=ref.precision,
            )
            batch = BatchModel(classifier, True, ref.batch_size)
            _MODELS[key] = LoadedModel(classifier, batch, OODStatistics.from_card(card))
        return _MODELS[key]


def _card_path(ref: ModelRef) -> str:
    if not ref.shipped:
        return ref.card
    from pyspark import SparkFiles

    return SparkFiles.get(ref.card)


def _use_task_cores() -> int:
    """One model thread per core Spark gives the task (spark.task.cpus), never all cores:
    every worker process on the machine runs a model at the same time. Returns that count
    (0 outside a Spark task: every core)."""
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
    except ImportError:
        context = None
    if context is None:
        return 0
    cores = max(1, int(context.cpus()))
    torch.set_num_threads(cores)
    return cores


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


# -- inputs ----------------------------------------------------------------------------------


def local_path(uri: str, base: str | None = None) -> Path | None:
    """The local file behind a plain path or a ``file:`` URI (relative paths are taken
    from ``base``, the folder of the table that listed them); None for other schemes."""
    parsed = urlparse(uri)
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return Path(uri)
    if parsed.scheme not in LOCAL_SCHEMES:
        return None
    # file: URIs carry a name's bytes percent-encoded (names need not be UTF-8)
    path = Path(os.fsdecode(unquote_to_bytes(parsed.path))) if parsed.scheme else Path(uri)
    if not path.is_absolute() and base:
        path = Path(base) / path
    return path


def display_path(uri: str, base: str | None = None) -> str:
    """The path as results show it: a local path for local files, else the URI."""
    local = local_path(uri, base)
    return display_text(str(local)) if local is not None else uri


@contextlib.contextmanager
def staged(frame: Any, base: str | None) -> Iterator[list[tuple[str, Path | None, str | None]]]:
    """(shown path, local file, read error) per row. Bytes Spark read (a ``content`` column,
    for remote storage) or read here through pyarrow's file systems are written to a
    temporary file, since the loader (like the desktop's) reads files."""
    remote = "content" in frame.columns
    contents = frame["content"] if remote else [None] * len(frame)
    with tempfile.TemporaryDirectory(prefix="xraydesk-spark-") as tmp:
        items: list[tuple[str, Path | None, str | None]] = []
        for k, (uri, content) in enumerate(zip(frame["path"], contents, strict=True)):
            uri = str(uri)
            local = local_path(uri, base)
            shown = display_text(str(local)) if local is not None else uri
            if remote and content is None:  # Spark's scan passed over it
                items.append((shown, None, NOT_SCANNED))
                continue
            if local is not None and content is None:
                items.append((shown, local, None))
                continue
            try:
                data = bytes(content) if content is not None else _read_remote(uri)
            except OSError as exc:
                items.append((shown, None, read_error(exc)))
                continue
            copy = Path(tmp) / f"{k}{Path(urlparse(uri).path).suffix}"
            copy.write_bytes(data)
            items.append((shown, copy, None))
        yield items


def _read_remote(uri: str) -> bytes:
    """A file on storage only pyarrow can reach from Python (s3://, gs://, hdfs://...)."""
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_file(path) as handle:
            return handle.read()
    except OSError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid etc. for an unusable URI
        raise OSError(f"{type(exc).__name__}: {exc}") from exc


# -- classification --------------------------------------------------------------------------


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


def classify_frames(
    frames: Iterable[Any],
    ref: ModelRef,
    known: KnownRows | None = None,
    base: str | None = None,
    walked: bool = False,
) -> Iterator[Any]:
    """``mapInPandas`` body: frames with a ``path`` (and maybe ``content``) column in, one
    result frame per input frame out; rows already known for this model are left out.
    ``walked``: the paths come from listing a folder, so (as in the desktop's folder walk)
    a file that is not an image by content is passed over unless its name says image."""
    import pandas as pd

    model = loaded_model(ref)
    classifier = model.classifier
    card = classifier.card
    ids = classifier.class_ids
    columns = result_columns(ids)
    prepare = Preparer(classifier, known, "", threading.Event(), known is not None)
    ood = model.ood

    def record(path: str, sha: str | None, error: str | None, **extra: Any) -> dict[str, Any]:
        row = {c: None for c in columns}
        row.update(path=path, content_hash=sha, model=card.name, version=card.version)
        row.update(error=error, warnings=[], indeterminate=False)
        row.update(extra)
        return row

    for frame in frames:
        out: list[tuple[int, dict[str, Any]]] = []
        pending: list[tuple[int, str, Prepared]] = []
        with staged(frame, base) as items:
            for k, (shown, local, cause) in enumerate(items):
                if cause is not None or local is None:
                    if not (known is not None and shown in known.failed_paths):
                        out.append((k, record(shown, None, cause or "cannot be read")))
                    continue
                prepared = prepare(local)
                if prepared.row is None:
                    pending.append((k, shown, prepared))
                elif walked and _not_an_image(prepared, shown):
                    continue
                elif not _reported(prepared, shown, known):
                    out.append((k, record(shown, prepared.sha256, prepared.row.error)))
        for start in range(0, len(pending), ref.batch_size):
            chunk = pending[start : start + ref.batch_size]
            outputs = model.batch.classify_outputs([p.tensor for _, _, p in chunk])
            verdicts = decide_all(  # the desktop's verdict: gate, OOD, population, attention
                classifier,
                outputs.probabilities,
                outputs.features,
                ood=ood,
                gate_warnings=[p.warnings for _, _, p in chunk],
                metadata=[p.metadata for _, _, p in chunk],
                appearance=[p.appearance for _, _, p in chunk],
                corrections=[p.corrections for _, _, p in chunk],
                activations=outputs.activations,
            )
            for (k, shown, prepared), verdict in zip(chunk, verdicts, strict=True):
                notes = verdict.codes
                answer = verdict.prediction or verdict.indeterminate  # withheld: numbers kept
                if answer is None:
                    out.append((k, record(shown, prepared.sha256, verdict.error, warnings=notes)))
                    continue
                values = {f"p_{cid}": answer.probabilities[cid] for cid in ids}
                out.append(
                    (
                        k,
                        record(
                            shown,
                            prepared.sha256,
                            None,
                            prediction=verdict.predicted,
                            indeterminate=verdict.is_indeterminate,
                            warnings=notes,
                            **values,
                        ),
                    )
                )
        out.sort(key=lambda item: item[0])
        yield pd.DataFrame([r for _, r in out], columns=columns)


def _not_an_image(prepared: Prepared, shown: str) -> bool:
    """A listed file that is no image and whose name does not claim one (notes.txt)."""
    assert prepared.row is not None
    suffix = Path(urlparse(shown).path).suffix.lower()
    return prepared.row.error == UNRECOGNISED and suffix not in IMAGE_EXTENSIONS


def _reported(prepared: Prepared, shown: str, known: KnownRows | None) -> bool:
    """True when the output already has this file's row: its content (a reused row), or
    its path among the files that could not be read."""
    assert prepared.row is not None
    if prepared.row.reused:
        return True
    return prepared.sha256 is None and known is not None and shown in known.failed_paths


# -- training --------------------------------------------------------------------------------


def hash_frames(frames: Iterable[Any]) -> Iterator[Any]:
    """``mapInPandas`` body: (row, path) in, (row, content_hash, error) out; reads each file
    once and decodes nothing (duplicates and the split are decided from the hashes)."""
    import pandas as pd

    for frame in frames:
        hashes, errors = [], []
        for path in frame["path"]:
            try:
                hashes.append(sha256_file(path))
                errors.append(None)
            except OSError as exc:
                hashes.append(None)
                errors.append(read_error(exc))
        yield pd.DataFrame({"row": frame["row"], "content_hash": hashes, "error": errors})


def feature_frames(frames: Iterable[Any], ref: ModelRef) -> Iterator[Any]:
    """``mapInPandas`` body: (row, path, other columns) in, (row, other columns, features,
    error) out, the features being the backbone's pooled output as quick mode computes it."""
    model = loaded_model(ref)
    prepare = Preparer(model.classifier, None, "", threading.Event(), False, False)
    for frame in frames:
        features: list[Any] = [None] * len(frame)
        errors: list[str | None] = [None] * len(frame)
        good: list[tuple[int, np.ndarray]] = []
        for k, path in enumerate(frame["path"]):
            prepared = prepare(Path(path))
            if prepared.row is not None:
                errors[k] = prepared.row.error
            else:
                good.append((k, prepared.tensor))
        for start in range(0, len(good), ref.batch_size):
            chunk = good[start : start + ref.batch_size]
            values = model.features([t for _, t in chunk])
            for (k, _), vector in zip(chunk, values, strict=True):
                if np.all(np.isfinite(vector)):
                    features[k] = vector.astype(np.float32)
                else:
                    errors[k] = "the backbone's features are not finite numbers"
        out = frame.drop(columns=["path"]).reset_index(drop=True)
        out["features"] = features
        out["error"] = errors
        yield out
