"""What a Spark Python worker runs for ``classify``: Arrow record batches in and out.

``mapInArrow`` hands each worker process pyarrow record batches of paths (and, for remote
storage, their bytes); each batch is decoded by the desktop's decode stage
(``batch.prepare.Preparer``: content hash, loader, preprocessing, input gate), classified
by the desktop's batch model on the runtime the desktop would choose (``runtime.select``:
the exported graph at the precision measured faithful for the model's weights; loaded
once per worker process, ``worker_model.loaded_model``) and given the desktop's verdict
(``batch.verdicts.prepared_verdicts``); one result record batch comes back per batch,
built column by column from numpy buffers (``arrow_columns``). No pandas: a frame per
batch and a Python object per cell cost more than the verdict, and pandas is not even
imported (``pa.array`` would import it: 0.5 CPU s per worker).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from xraydesk.batch.prepare import Prepared, Preparer
from xraydesk.batch.verdicts import prepared_verdicts
from xraydesk.imaging.discover import IMAGE_EXTENSIONS
from xraydesk.imaging.loader import UNRECOGNISED
from xraydesk.runtime.recheck import RecheckedBackend
from xraydesk.spark.arrow_columns import record_batch
from xraydesk.spark.inputs import staged
from xraydesk.spark.worker_model import (
    KnownRows,
    LoadedModel,
    ModelRef,
    loaded_model,
    result_columns,
)


def arrow_schema(class_ids: list[str]) -> Any:
    """The result batches' pyarrow schema (``classify.output_schema`` in Spark's words)."""
    import pyarrow as pa

    types = {"warnings": pa.list_(pa.string()), "indeterminate": pa.bool_()}
    types.update({f"p_{cid}": pa.float64() for cid in class_ids})
    return pa.schema([(c, types.get(c, pa.string())) for c in result_columns(class_ids)])


class _Rows:
    """One batch's result rows, kept in input order, as columns."""

    def __init__(self, model: LoadedModel) -> None:
        card = model.classifier.card
        self.card, self.ids = card, model.classifier.class_ids
        self.columns = result_columns(self.ids)
        self.rows: list[tuple[int, dict[str, Any]]] = []

    def add(self, k: int, path: str, sha: str | None, error: str | None, **extra: Any) -> None:
        row = dict(path=path, content_hash=sha, model=self.card.name, version=self.card.version)
        row.update(error=error, warnings=[], indeterminate=False)
        row.update(extra)
        self.rows.append((k, row))

    def batch(self, schema: Any) -> Any:
        self.rows.sort(key=lambda item: item[0])
        data = {c: [row.get(c) for _, row in self.rows] for c in self.columns}
        return record_batch(data, schema)  # not from_pydict: pandas stays unimported


def classify_batches(
    batches: Iterable[Any],
    ref: ModelRef,
    known: KnownRows | None = None,
    base: str | None = None,
    walked: bool = False,
) -> Iterator[Any]:
    """``mapInArrow`` body: record batches with a ``path`` (and maybe ``content``) column
    in, one result batch per input batch out; rows already known for this model are left
    out. ``walked``: the paths come from listing a folder, so (as in the desktop's folder
    walk) a file that is not an image by content is passed over unless its name says image."""
    model = loaded_model(ref)
    schema = arrow_schema(model.classifier.class_ids)
    prepare = Preparer(model.classifier, known, "", threading.Event(), known is not None)
    for batch in batches:
        names = batch.schema.names
        paths = batch.column(names.index("path")).to_pylist()
        contents = batch.column(names.index("content")).to_pylist() if "content" in names else None
        rows = _Rows(model)
        pending: list[tuple[int, str, Prepared]] = []
        with staged(paths, contents, base) as items:
            for k, (shown, local, cause) in enumerate(items):
                if cause is not None or local is None:
                    if not (known is not None and shown in known.failed_paths):
                        rows.add(k, shown, None, cause or "cannot be read")
                    continue
                prepared = prepare(local)
                if prepared.row is None:
                    pending.append((k, shown, prepared))
                elif walked and _not_an_image(prepared, shown):
                    continue
                elif not _reported(prepared, shown, known):
                    rows.add(k, shown, prepared.sha256, prepared.row.error)
        for start in range(0, len(pending), ref.batch_size):
            _classify(model, pending[start : start + ref.batch_size], rows)
        yield rows.batch(schema)


def _classify(model: LoadedModel, chunk: list[tuple[int, str, Prepared]], rows: _Rows) -> None:
    """One model batch and the desktop's verdict (gate, OOD, population, attention)."""
    outputs = model.batch.classify_outputs([p.tensor for _, _, p in chunk])
    verdicts = prepared_verdicts(model.classifier, outputs, [p for _, _, p in chunk], model.ood)
    for (k, shown, prepared), verdict in zip(chunk, verdicts, strict=True):
        notes = verdict.codes
        answer = verdict.prediction or verdict.indeterminate  # withheld: numbers kept
        if answer is None:
            rows.add(k, shown, prepared.sha256, verdict.error, warnings=notes)
            continue
        values = {f"p_{cid}": float(answer.probabilities[cid]) for cid in rows.ids}
        indeterminate = verdict.is_indeterminate
        predicted = verdict.predicted
        rows.add(k, shown, prepared.sha256, None, prediction=predicted, **values,
                 indeterminate=indeterminate, warnings=notes)  # fmt: skip


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


def warm_up(ref: ModelRef) -> str:
    """Ready this worker for ``classify_batches``: the model loaded (its graph compiled)
    and the decode stage's gate and heads read; a rechecked runtime's fp32 graph compiled
    too (built at its first uncertain row otherwise, which every worker's first batch
    has). No pass is run: a blank batch would cost a real batch's time. Returns "" or why
    it could not (the real job reports it)."""
    try:
        model = loaded_model(ref)
        Preparer(model.classifier, None, "", threading.Event(), False)
        if isinstance(model.batch.backend, RecheckedBackend):
            model.batch.backend.exact()
    except Exception as exc:  # the real job gives the error row or failure
        return f"{type(exc).__name__}: {exc}"
    return ""
