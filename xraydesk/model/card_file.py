"""Reading a model card's JSON without ever hanging or running out of memory.

The model folders are scanned at every start (``xraydesk models``, ``classify``, the
viewer), and anything named ``*.json`` in them is read. A named pipe called
``notes.json`` blocked that read forever; a symlink ``z.json`` to /dev/zero read until
the out-of-memory killer came; 200,000 nested brackets ended in ``RecursionError``. As the
image loader does (``xraydesk.imaging.limits.check_file``), a card is opened only if it
is a regular file under a size cap, and the check is made on the opened file itself (a
file swapped for a pipe between a look and the open cannot block it).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from xraydesk.errors import ModelError
from xraydesk.files import read_error, special_file_kind

# The bundled cards are about 210 KB (most of it the out-of-distribution statistics);
# a card 40 times that is not one XRayDesk wrote.
MAX_CARD_BYTES = 8 * 1024**2
# The fields a result depends on; a card's integrity hash covers exactly these.
MEANING_FIELDS = ("architecture", "classes", "preprocessing", "temperature", "weights")
# Result-bearing fields that cards made before them lack: hashed only when present, so an
# older card keeps its hash, and deleting one from a card that had it is an edit.
OPTIONAL_MEANING_FIELDS = ("operating_rule", "reference_outputs", "class_groups")


def meaning_fields(data: dict[str, Any]) -> list[str]:
    """The fields the integrity hash of this card's JSON covers."""
    return [*MEANING_FIELDS, *(k for k in OPTIONAL_MEANING_FIELDS if data.get(k) is not None)]


def meaning_hash(data: dict[str, Any]) -> str:
    """sha256 of the result-bearing fields of a card's JSON, in a canonical form."""
    meaning = {key: data.get(key) for key in meaning_fields(data)}
    canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def read_card_json(path: Path, max_bytes: int = MAX_CARD_BYTES) -> Any:
    """The parsed JSON of a card file, or ``ModelError`` naming the file and the cause."""
    text = _read_text(path, max_bytes)
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelError(f"{path}: unreadable model card (JSON nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, and ints longer than Python converts
        raise ModelError(f"{path}: unreadable model card ({exc})") from None


def _read_text(path: Path, max_bytes: int) -> str:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        info = path.stat()  # a FIFO or a device is refused before it is opened at all
        _check(path, info, max_bytes)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelError(f"{path}: model card not found") from None
    except OSError as exc:
        raise ModelError(f"{path}: unreadable model card ({read_error(exc)})") from None
    except ValueError as exc:  # an embedded NUL byte in the path
        raise ModelError(f"{path}: not a valid file path ({exc})") from None
    try:
        _check(path, os.fstat(fd), max_bytes)  # what was opened, not what was looked at
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise ModelError(f"{path}: unreadable model card ({read_error(exc)})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew after the check
        raise ModelError(f"{path}: model card larger than {max_bytes:,} bytes: not read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: unreadable model card (not UTF-8 text: {exc})") from None


def _check(path: Path, info: os.stat_result, max_bytes: int) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise ModelError(f"{path}: is a folder, not a model card")
    if not stat.S_ISREG(mode):
        kind = special_file_kind(mode)
        raise ModelError(f"{path}: not a regular file ({kind}): not read as a model card")
    if info.st_size > max_bytes:
        raise ModelError(
            f"{path}: model card too large ({info.st_size:,} bytes exceeds the limit of "
            f"{max_bytes:,}): not read"
        )
