"""What runs inside Spark's Python workers besides ``classify``'s Arrow batches.

``classify_frames``: ``worker_classify.classify_batches`` on pandas frames, for callers
that hold frames. The training jobs' bodies (``mapInPandas``): ``hash_frames`` and
``feature_frames``, the latter on the worker's model (``worker_model.loaded_model``).
The names of ``worker_model`` are here too, for the callers that import them from here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk.batch.prepare import Preparer
from xraydesk.files import read_error, sha256_file
from xraydesk.spark.worker_classify import classify_batches
from xraydesk.spark.worker_model import (
    _MODELS,
    KnownRows,
    LoadedModel,
    ModelRef,
    loaded_model,
    result_columns,
    task_cores,
)

__all__ = [
    "_MODELS",
    "KnownRows",
    "LoadedModel",
    "ModelRef",
    "classify_frames",
    "feature_frames",
    "hash_frames",
    "loaded_model",
    "result_columns",
    "task_cores",
]


def classify_frames(
    frames: Iterable[Any],
    ref: ModelRef,
    known: KnownRows | None = None,
    base: str | None = None,
    walked: bool = False,
) -> Iterator[Any]:
    """``worker_classify.classify_batches`` on pandas frames (a frame per batch, for
    callers that hold frames; Spark itself runs the Arrow batches)."""
    import pyarrow as pa

    batches = (pa.RecordBatch.from_pandas(f, preserve_index=False) for f in frames)
    for out in classify_batches(batches, ref, known, base, walked):
        yield out.to_pandas()


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
