"""Classifying a stream of files, one row per file, never stopping at a bad one."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from xraydesk.batch.results import ResultRow
from xraydesk.errors import XRayDeskError
from xraydesk.imaging import load_xray
from xraydesk.model.classifier import Classifier

log = logging.getLogger(__name__)


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def classify_paths(paths: Iterable[Path], classifier: Classifier) -> Iterator[ResultRow]:
    """One ResultRow per path, in order; a file that fails becomes a row with ``error`` set."""
    for path in paths:
        start = time.perf_counter()
        row = ResultRow(path=path, model=classifier.card.label)
        try:
            xray = load_xray(path)
            row.content_hash = content_hash(path)
            prediction = classifier.predict(xray)
            row.prediction = prediction.predicted
            row.probabilities = prediction.probabilities
        except XRayDeskError as exc:
            row.error = exc.cause if hasattr(exc, "cause") else str(exc)
        except Exception as exc:  # a bad file must never end the run
            log.exception("unexpected failure on %s", path)
            row.error = f"unexpected error: {type(exc).__name__}: {exc}"
        row.seconds = time.perf_counter() - start
        yield row
