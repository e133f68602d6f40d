"""The XRayDesk log file: ``<data folder>/logs/xraydesk.log``, rotated, without identifiers.

Every front door (the desktop app and each ``xraydesk`` subcommand) calls ``setup`` first,
so an error banner that asks the user to report a problem can name a file that exists.
Patient identifiers are never logged on purpose; ``IdentifierScrubber`` is a second line
of defence that removes DICOM person names, patient IDs, birth dates and accession
numbers from any record (a library's message, a traceback) before it is written.
No Qt here: the CLI uses it too.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import traceback
import warnings
from pathlib import Path

from xraydesk import __version__, paths

LOG_NAME = "xraydesk.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
REMOVED = "[removed]"

# "PatientName=DOE^JOHN", "'PatientID': '12345'", "(0010,0020) Patient ID LO: 12345"...
_KEYWORDS = (
    r"Patient'?s?\s*Name|Patient\s*ID|Other\s*Patient\s*IDs|Patient'?s?\s*Birth\s*Date"
    r"|Accession\s*Number|Accession|Referring\s*Physician'?s?\s*Name|Issuer\s*of\s*Patient\s*ID"
)
_KEYED = re.compile(
    rf"(?P<key>\b(?:{_KEYWORDS})\b['\"]?\s*(?:\w\w\s*)?[:=]\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;)\]}}]+)",
    re.IGNORECASE,
)
_TAG = re.compile(
    r"(?P<key>\(0010,\s*00(?:10|20|30)\)|\(0008,\s*0050\)|\(0010,\s*1000\))(?P<value>[^\n]*)",
    re.IGNORECASE,
)
# pydicom's validation warning quotes the value it read: "Invalid value for VR DA:
# '19520101'." (a birth date, a UID, an ID with a stray character)
_VR_VALUE = re.compile(
    r"(?P<key>Invalid value for VR [A-Z]{2}: )"
    r"(?P<value>b?'(?:[^'\\]|\\.)*'|b?\"(?:[^\"\\]|\\.)*\"|\S+)"
)
# a DICOM person name: FAMILY^GIVEN (carets are not used in ordinary text or paths)
_PERSON_NAME = re.compile(r"\b[^\W\d_][\w\-]*\^[\w\-^]*")


def scrub(text: str) -> str:
    """``text`` with DICOM identifiers replaced by ``[removed]``."""
    text = _TAG.sub(lambda m: f"{m.group('key')} {REMOVED}", text)
    text = _VR_VALUE.sub(lambda m: f"{m.group('key')}{REMOVED}", text)
    text = _KEYED.sub(lambda m: f"{m.group('key')}{REMOVED}", text)
    return _PERSON_NAME.sub(REMOVED, text)


class IdentifierScrubber(logging.Filter):
    """Rewrites a record's message (and traceback) without identifiers; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw text
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class _OursOrWarnings(logging.Filter):
    """The file gets XRayDesk's own INFO lines, and only warnings from libraries (a
    network library's INFO can carry a query's fields)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith("xraydesk") or record.levelno >= logging.WARNING


class _XRayDeskFileHandler(logging.handlers.RotatingFileHandler):
    """Marks the handler ``setup`` installed, so a second call replaces it, not adds one."""


def log_file() -> Path:
    """Where the log is written (the folder is created on first use)."""
    folder = paths.data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / LOG_NAME


def setup(front_door: str) -> Path | None:
    """Write XRayDesk's log to ``log_file()`` from now on; the path, or None when the data
    folder cannot be written (the app still runs; messages then go to stderr only).

    Safe to call more than once (the GUI is started from the CLI): the file handler is
    replaced, for instance when ``XRAYDESK_DATA_DIR`` has changed in between.
    """
    # pydicom's warn_and_log both logs a message (through the scrubber below) and raises it
    # as a Python warning, which Python prints to stderr as it is: with the value it read
    # ("Invalid value for VR DA: '19520101'"), where a service's stderr becomes a log.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _XRayDeskFileHandler):
            root.removeHandler(handler)
            handler.close()
        elif type(handler) is logging.StreamHandler and handler.level == logging.NOTSET:
            handler.setLevel(logging.WARNING)  # INFO goes to the file, not the terminal
            handler.addFilter(IdentifierScrubber())
    try:
        path = log_file()
        handler = _XRayDeskFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        )
    except OSError:
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    handler.addFilter(_OursOrWarnings())
    handler.addFilter(IdentifierScrubber())
    root.addHandler(handler)
    ours = logging.getLogger("xraydesk")
    if ours.getEffectiveLevel() > logging.INFO:
        ours.setLevel(logging.INFO)
    ours.info("XRayDesk %s started (%s)", __version__, front_door)
    return path


def exception_site(exc: BaseException) -> str:
    """``exc``'s type and the line that raised it, never its message: "NameError at
    fx/_symbolic_trace.py:535 in path_of_module (from model/resnet.py:41 in forward)".

    Why: a catch-all that keeps a service going logs no message (a message may quote a
    header value, a patient's name), so the type alone was all a rare failure left behind
    (the DICOM node once noted "NameError" and nothing else; this found torch.fx's tracer,
    see ``model.resnet.fold_batch_norms``). A code location carries no patient data; the
    innermost frame says where, the innermost of XRayDesk's own says which of our calls
    led there. Paths are cut to their last two parts (no home folder)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__

    def at(frame: traceback.FrameSummary) -> str:
        return f"{'/'.join(Path(frame.filename).parts[-2:])}:{frame.lineno} in {frame.name}"

    site = f"{type(exc).__name__} at {at(frames[-1])}"
    package = Path(__file__).resolve().parent
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(package)]
    if ours and ours[-1] is not frames[-1]:
        site += f" (from {at(ours[-1])})"
    return site


def log_hint() -> str:
    """For messages that ask the user to report a problem: where the log is."""
    try:
        return f"the log file {log_file()}"
    except OSError:
        return "the messages printed in the terminal"
