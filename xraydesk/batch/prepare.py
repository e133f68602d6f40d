"""A batch run's decode stage: one file to a model input, or to a row that is already final.

Runs in the decode threads (``prefetch.ordered_map``): check the file on ``stat`` (a
pipe, a device or a huge file is refused before a byte is read: reading them blocks or
takes minutes), hash it (sha256), look the hash up in the results database (a file this
model already classified is reused, not decoded), else decode and preprocess it and pass
it through the input gate (``xraydesk.trust``; with ``auto_orient`` a confidently rotated
or inverted image is corrected in memory before preprocessing). Never
raises for a bad file: it becomes an error row naming the cause. A folder that discovery
could not list gets its error row here too, in its place in the walk.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xraydesk.batch.database import ResultStore, utc_now
from xraydesk.batch.rows import ResultRow
from xraydesk.classifier import Classifier
from xraydesk.errors import ImageLoadError
from xraydesk.files import FILE_NOT_FOUND, read_error, sha256_file
from xraydesk.imaging import load_xray
from xraydesk.imaging.limits import check_file
from xraydesk.imaging.xray import ImageMetadata, XRay
from xraydesk.trust.appearance import Appearance, AppearanceHeads
from xraydesk.trust.codes import INVERTED, ROTATED, ResultWarning
from xraydesk.trust.gate import (
    GateResult,
    InputGate,
    image_statistics,
    unit_thumbnail,
    view_warnings,
)
from xraydesk.trust.orient import corrected, correction_text
from xraydesk.trust.thumb_nets import ThumbNets

log = logging.getLogger(__name__)


content_hash = sha256_file  # results are keyed by the sha256 of each file's bytes
# Files up to this size are read once, hashed and decoded from memory (one open, not
# three: the hash, the loader's format sniff and the decoder each opened the file); larger
# ones are hashed in chunks and read again by the decoder, as a DICOM always is.
IN_MEMORY_BYTES = 64 * 1024**2


def _hashed(path: Path, size: int) -> tuple[str, bytes | None]:
    """The sha256 of the file's bytes (``content_hash``'s), and the bytes when the file is
    small enough to keep for the decoder. OSError passes."""
    if size > IN_MEMORY_BYTES:
        return content_hash(path), None
    with open(path, "rb") as handle:
        data = handle.read(IN_MEMORY_BYTES + 1)  # bounded: the file may have grown since
    if len(data) > IN_MEMORY_BYTES:
        return content_hash(path), None
    return hashlib.sha256(data).hexdigest(), data


@dataclass
class Prepared:
    """What a decode thread hands the model: an input tensor, or an already final row."""

    path: Path
    sha256: str | None = None
    tensor: np.ndarray | None = None  # the model input (C, S, S)
    xray: XRay | None = None  # kept only for Grad-CAM
    row: ResultRow | None = None  # error or reused row: nothing left to compute
    seconds: float = 0.0
    missing: bool = False
    warnings: list[ResultWarning] | None = None  # the input gate's, for the row
    # what auto-orient corrected before classifying (rotated/inverted notes, not withheld)
    corrections: list[ResultWarning] | None = None
    metadata: ImageMetadata | None = None  # the patient's age for the verdict's population
    appearance: Appearance | None = None  # mirrored? a child's or an adult's? (estimated)
    shape: tuple[int, int] | None = None  # (rows, cols) preprocessed: the lung prior's place


class Preparer:
    """The decode stage of one run, called once per path from any decode thread."""

    def __init__(
        self,
        classifier: Classifier,
        store: ResultStore | None,
        key: str,
        cancel: threading.Event,
        skip_known: bool = True,
        keep_xray: bool = False,
        unreadable: dict[Path, str] | None = None,
        auto_orient: bool = False,
    ) -> None:
        self.classifier = classifier
        self.store = store if skip_known else None
        self.key = key
        self.label = classifier.card.label
        self.cancel = cancel
        self.keep_xray = keep_xray
        self.unreadable = unreadable if unreadable is not None else {}  # folder -> cause
        self.auto_orient = auto_orient
        self.nets = ThumbNets(InputGate.default(), AppearanceHeads.default())

    def __call__(self, path: Path) -> Prepared:
        """Hash, look up, decode and preprocess one file; never raises for a bad file."""
        if self.cancel.is_set():
            return Prepared(path, row=self.error_row(path, "cancelled"))
        folder_error = self.unreadable.get(path)
        if folder_error is not None:
            return Prepared(path, row=self.error_row(path, folder_error))
        start = time.perf_counter()
        try:
            info = check_file(path)  # on stat only: never opens a pipe nor hashes 8 GB of holes
            sha, data = _hashed(path, info.st_size)
        except ImageLoadError as exc:
            row = self.error_row(path, exc.cause, time.perf_counter() - start)
            return Prepared(path, row=row, missing=exc.cause == FILE_NOT_FOUND)
        except OSError as exc:
            cause = read_error(exc)
            return Prepared(
                path,
                row=self.error_row(path, cause, time.perf_counter() - start),
                missing=isinstance(exc, FileNotFoundError),
            )
        known = self._known(path, sha)
        if known is not None:
            return Prepared(path, sha256=sha, row=known)
        try:
            xray = load_xray(path, data=data)
            del data  # the file's bytes: not kept while the image is gated and resized
            xray, unit, look, warnings, corrections = self._gated(xray)
            tensor = self.classifier.preprocessing.from_unit(unit)
        except ImageLoadError as exc:
            row = self.error_row(path, exc.cause, time.perf_counter() - start, sha)
            return Prepared(path, sha256=sha, row=row, missing=exc.cause == FILE_NOT_FOUND)
        except Exception as exc:  # a reader or preprocessing bug must not end the run
            log.warning("unexpected failure on %s", path, exc_info=True)
            cause = f"unexpected error: {type(exc).__name__}: {exc}"
            return Prepared(path, sha256=sha, row=self.error_row(path, cause, 0.0, sha))
        keep = xray if self.keep_xray else None
        seconds = time.perf_counter() - start
        return Prepared(
            path,
            sha,
            tensor,
            keep,
            seconds=seconds,
            warnings=warnings,
            corrections=corrections,
            metadata=xray.metadata,
            appearance=look,
            shape=xray.shape,
        )

    def _gated(self, xray: XRay):
        """The input gate on the rendered image; with ``auto_orient`` a confidently rotated
        or inverted image is corrected in memory and gated again. The corrections keep the
        rotated/inverted codes, saying the result is from the corrected image; they do not
        withhold its class (the corrected image's own gate warnings do). Also returns the
        appearance heads' estimate of the final image."""
        unit = xray.render()
        gate, look = self._check(xray, unit)
        if not (self.auto_orient and gate.correctable):
            return xray, unit, look, list(gate.warnings), []
        fixed = corrected(xray, gate)
        unit = fixed.render()
        again, look = self._check(fixed, unit)
        done = correction_text(gate)
        notes = [
            ResultWarning(w.code, f"{w.message}; corrected in memory ({done}) and classified "
                          "again, the file is unchanged")
            for w in gate.warnings
            if w.code in (ROTATED, INVERTED)
        ]  # fmt: skip
        kept = [w for w in again.warnings if w.code not in (ROTATED, INVERTED)]
        return fixed, unit, look, kept, notes

    def _check(self, xray: XRay, unit: np.ndarray) -> tuple[GateResult, Appearance]:
        """The gate's verdict on ``unit`` (as ``InputGate.check_unit``) and the appearance
        heads' estimate, both from one thumbnail and one network call (``ThumbNets``)."""
        thumb = unit_thumbnail(unit)[None]
        gates, looks = self.nets.judge(thumb, [image_statistics(unit)], [view_warnings(xray)])
        return gates[0], looks[0]

    def _known(self, path: Path, sha: str) -> ResultRow | None:
        """The row this model already made for this content, renamed to ``path``."""
        if self.store is None:
            return None
        try:
            known = self.store.known_row(self.key, sha)
        except sqlite3.Error as exc:  # a busy or damaged database: classify it anyway
            log.warning("results lookup failed for %s: %s", path, exc)
            return None
        if known is not None and {ROTATED, INVERTED} & set(known.warning_codes):
            return None  # classified as it was or corrected: this run may do the other
        if known is not None:
            known.path, known.model = path, self.label
        return known

    def error_row(
        self, path: Path, cause: str, seconds: float = 0.0, sha: str | None = None
    ) -> ResultRow:
        return ResultRow(
            path=path,
            model=self.label,
            error=cause,
            content_hash=sha,
            seconds=seconds,
            classified_at=utc_now(),
        )
