"""One classified file, as the CLI prints it, the GUI shows it and the database stores it.

Export formats (documented for users in ``xraydesk classify --help``):

- CSV: one header line, then one line per file: path, sha256, model, prediction,
  indeterminate (``true``/``false``), withheld_prediction, finding, ``p_<class id>`` for every
  class in the model's order, seconds, classified_at,
  reused, warnings (the stable codes of ``xraydesk.trust.codes``, separated by ``;``,
  empty when none; as in the Spark output), error, frames (the source's frame count:
  only frame 1 of a multi-frame file is classified; empty where not known, since rows
  read back from the database do not keep it). A file name that is not valid UTF-8
  is written with ``\\xNN`` escapes (``display_text``), so the file stays UTF-8; a text
  cell that starts with a formula character (= + - @ tab, carriage return) gets a leading
  single quote (``csv_safe``).
- JSON: ``write_json_lines`` writes JSON Lines (one object per line, what
  ``xraydesk classify --json`` prints); ``write_json_array`` writes one JSON array of
  the same objects (what the GUI's "Export JSON" saves). Both stream: a run of any size
  is written without holding it in memory. Each object has ``"warnings"``: the list of
  stable codes (``not_chest``, ``rotated``, ``inverted``, ``lateral``,
  ``out_of_distribution``, ``low_quality``, ...), and ``"warning_messages"``: the same
  warnings as ``{"code", "message"}`` objects for people. A flagged file still has its row.
  ``"frames"`` is the source's frame count (null where not known) and, for a multi-frame
  source, ``"note"`` says that frame 1 of N was classified.

Indeterminate (the one verdict, ``trust.verdict``): a file classified without a class
named, because its top probability is below the operating rule's threshold (warning
``indeterminate``) or the input gate flagged the image (``not_chest``, ``rotated``...,
whose numbers the viewer hides behind "Show anyway"), has ``prediction`` null (empty)
and ``indeterminate`` true; its probabilities are kept for reference, and the top class
it would have named is only under ``withheld_prediction``. Every other row has
``indeterminate`` false and ``withheld_prediction`` null. ``finding`` is what an
indeterminate row still finds: the id of the model card's class group (``pneumonia``
for the paediatric model's bacterial and viral) that the rule accepts when the classes
it hesitates between are summed; null (empty) on every other row.
"""

from __future__ import annotations

import csv
import errno
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from xraydesk.errors import XRayDeskError
from xraydesk.files import SideFile
from xraydesk.trust.codes import ResultWarning
from xraydesk.trust.verdict import Verdict


def indeterminate_words(finding: str | None) -> str:
    """How a table names an indeterminate answer: "Indeterminate", with what it still
    finds ("Indeterminate (finds pneumonia)"); the same words in the CLI's tables (upper
    case), the batch panel and the PACS worklist."""
    return f"Indeterminate (finds {finding})" if finding else "Indeterminate"


@dataclass
class ResultRow:
    path: Path
    model: str  # "name version"
    prediction: str | None = None  # class id
    probabilities: dict[str, float] | None = None  # class id -> probability
    error: str | None = None  # the cause, without the path (the row names the file)
    content_hash: str | None = None  # sha256 of the file's bytes
    seconds: float = 0.0  # decoding, preprocessing and this file's share of its batch
    classified_at: str | None = None  # ISO 8601 UTC, when the probabilities were computed
    reused: bool = False  # taken from an earlier run: same content, same model
    # Reasons not to trust the result (input gate, out-of-distribution).
    warnings: list[ResultWarning] = field(default_factory=list)
    # Frames in the source: only frame 1 is classified (None: not known, e.g. reused rows)
    frames: int | None = None
    # classified, yet no class named (``Verdict.is_indeterminate``): ``prediction`` is
    # None, ``probabilities`` the withheld answer's
    indeterminate: bool = False
    # what an indeterminate answer still finds (``Verdict.finding``): the id of the card's
    # class group its rule accepts ("pneumonia", kind not named); None on other rows
    finding: str | None = None

    @property
    def outcome_words(self) -> str:
        """How a table names this row if indeterminate (``indeterminate_words``)."""
        return indeterminate_words(self.finding)

    @property
    def withheld_prediction(self) -> str | None:
        """The top class an indeterminate row does not name (None for every other row)."""
        if not self.indeterminate or not self.probabilities:
            return None
        return max(self.probabilities, key=lambda c: self.probabilities[c])  # type: ignore[index]

    def take_verdict(self, verdict: Verdict, class_ids: Sequence[str]) -> None:
        """The one verdict's outcome on this row: its class, or none with the withheld
        answer's probabilities (indeterminate), or its error; and its warnings."""
        shown = verdict.prediction or verdict.indeterminate
        self.prediction = verdict.predicted
        self.indeterminate = verdict.is_indeterminate
        self.finding = verdict.finding if verdict.is_indeterminate else None
        self.probabilities = (
            None if shown is None else {c: shown.probabilities[c] for c in class_ids}
        )
        self.error = verdict.error
        self.warnings = list(verdict.warnings)

    @property
    def frame_note(self) -> str | None:
        """What a reader must know about a multi-frame source (None for a single frame)."""
        if self.frames is None or self.frames <= 1:
            return None
        return f"classified frame 1 of {self.frames}: the other frames were not read"

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def warning_codes(self) -> list[str]:
        return [w.code for w in self.warnings]

    @property
    def flagged(self) -> bool:
        return bool(self.warnings)

    @property
    def confidence(self) -> float | None:
        """Probability of the predicted class (None for an error row)."""
        if self.probabilities is None or self.prediction is None:
            return None
        return self.probabilities.get(self.prediction)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.content_hash,
            "model": self.model,
            "prediction": self.prediction,
            "indeterminate": self.indeterminate,
            "withheld_prediction": self.withheld_prediction,
            "finding": self.finding,
            "probabilities": self.probabilities,
            "error": self.error,
            "seconds": round(self.seconds, 6),
            "classified_at": self.classified_at,
            "reused": self.reused,
            "warnings": self.warning_codes,
            "warning_messages": [w.to_dict() for w in self.warnings],
            "frames": self.frames,
            **({"note": note} if (note := self.frame_note) else {}),
        }


def csv_header(class_ids: Sequence[str]) -> list[str]:
    return [
        "path",
        "sha256",
        "model",
        "prediction",
        "indeterminate",
        "withheld_prediction",
        "finding",
        *(f"p_{cid}" for cid in class_ids),
        "seconds",
        "classified_at",
        "reused",
        "warnings",
        "error",
        "frames",
    ]


def display_text(text: str) -> str:
    """``text`` as valid UTF-8 for SQLite, CSV files and screens.

    Python decodes a file name that is not UTF-8 with surrogate escapes (``os.fsdecode``);
    such a str cannot be encoded, so SQLite and a UTF-8 file refuse it. Its undecodable
    bytes are shown as ``\\xNN`` (any other lone surrogate as ``\\uNNNN``); valid text is
    returned unchanged.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    """Text for a CSV cell that a spreadsheet shows and never evaluates: a leading
    formula character gets a single quote before it (OWASP's advice), e.g. a file named
    ``=HYPERLINK(...).png``; anything not valid UTF-8 is escaped (``display_text``)."""
    text = display_text(text)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_record(row: ResultRow, class_ids: Sequence[str]) -> list[str]:
    """One CSV line's cells; the numbers are ours, every text cell goes through ``csv_safe``."""
    probs = row.probabilities or {}
    cells = [f"{probs[c]:.6f}" if c in probs else "" for c in class_ids]
    return [
        csv_safe(str(row.path)),
        csv_safe(row.content_hash or ""),
        csv_safe(row.model),
        csv_safe(row.prediction or ""),
        "true" if row.indeterminate else "false",
        csv_safe(row.withheld_prediction or ""),
        csv_safe(row.finding or ""),
        *cells,
        f"{row.seconds:.4f}",
        csv_safe(row.classified_at or ""),
        "yes" if row.reused else "no",
        csv_safe(";".join(row.warning_codes)),
        csv_safe(row.error or ""),
        "" if row.frames is None else str(row.frames),
    ]


def write_csv(rows: Iterable[ResultRow], class_ids: Sequence[str], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(csv_header(class_ids))
    count = 0
    for row in rows:
        writer.writerow(csv_record(row, class_ids))
        count += 1
    return count


def write_json_lines(rows: Iterable[ResultRow], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row.to_json_dict()) + "\n")
        count += 1
    return count


def write_json_array(rows: Iterable[ResultRow], out: IO[str]) -> int:
    """A JSON array, one object per line inside it, written as the rows come."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(row.to_json_dict()))
        count += 1
    out.write("\n]\n")
    return count


class ExportError(XRayDeskError):
    """An export file could not be written (disk full, no permission...)."""


def export_rows(
    rows: Iterable[ResultRow], class_ids: Sequence[str], path: str | os.PathLike[str], fmt: str
) -> int:
    """Write rows to ``path`` as 'csv', 'json' (an array) or 'jsonl'; returns the row count.

    Written through a ``files.SideFile`` (a hidden side file renamed at the end), so a
    failure (a full disk) never leaves a truncated file that looks complete; the message
    says the results themselves are safe in the database.
    """
    writers: dict[str, Callable[[Iterable[ResultRow], IO[str]], int]] = {
        "csv": lambda r, out: write_csv(r, class_ids, out),
        "json": write_json_array,
        "jsonl": write_json_lines,
    }
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r}")
    target = Path(path)
    try:
        side = SideFile(target, newline="" if fmt == "csv" else None)
        try:
            count = writers[fmt](rows, side.file)
        except BaseException:
            side.discard()
            raise
        side.commit()
    except OSError as exc:
        message = describe_write_error(target, exc, what=f"the {fmt.upper()} file")
        raise ExportError(message) from exc
    return count


def describe_write_error(
    path: Path,
    exc: OSError,
    what: str = "the file",
    saved: str = "the results are safe in the database",
) -> str:
    """A sentence for a failed write; a full disk is named as such. ``saved``: what is
    left of the results (the default is true only of recorded runs)."""
    if exc.errno == errno.ENOSPC:
        cause = "the disk is full"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        cause = "permission denied"
    else:
        cause = exc.strerror or str(exc)
    return f"{path}: could not write {what} ({cause}); {saved}"
