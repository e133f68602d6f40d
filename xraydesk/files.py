"""File helpers every layer shares: content hashes and atomic writes.

``sha256_file`` reads in 1 MiB chunks so a large DICOM never sits in memory twice; model
weights are checked against the sha256 in their card and batch results are keyed by the
sha256 of each image's content. ``write_atomic`` writes to a temporary name beside the
target and renames over it, so a process killed at any instant leaves the old file or the
new one, never half of one (cards, splits, training histories and checkpoints' configs).
``SideFile`` does the same for a file written row by row as results come (CSV and JSON
exports), and ``process_alive`` tells whether the writer of a run or a file still lives.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of the file's bytes; OSError propagates to the caller, who names the file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, text: str | bytes | Callable[[BinaryIO], None]) -> None:
    """Write to a temporary file in the same folder, then rename over the target.
    ``text`` may be a function that writes the content to the open file (streamed)."""
    refuse_non_file_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; models and cards are read by every user
        with os.fdopen(fd, "wb") as fh:
            if callable(text):
                text(fh)
            else:
                fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` exists: True or False where the OS can say without harm
    (POSIX, signal 0), None where it cannot (on Windows os.kill would end the process)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # another user's process
    return True


_SIDE_FILE = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.partial$")
_SIDE_FILE_STALE_S = 24 * 3600  # where a process cannot be asked whether it lives


class SideFile:
    """A text file written under a hidden name beside its target and renamed over it only
    when complete, so a failure (a full disk, a crash, Ctrl-C) never leaves a truncated
    file that looks finished.

    The side file is ``.NAME.<pid>-<random>.partial``: two writers never share one, and
    side files whose process is gone (killed mid-write) are removed when the next one is
    opened in that folder, so they never pile up.
    """

    def __init__(self, target: Path, newline: str | None = None, errors: str = "strict") -> None:
        self.target = Path(target)
        refuse_non_file_target(self.target)  # now, not when the rename fails after the work
        self.path = self.target.with_name(
            f".{self.target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"
        )
        self.target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_side_files(self.target.parent)
        self.file: IO[str] = open(  # noqa: SIM115 - closed by commit() or discard()
            self.path, "x", newline=newline, encoding="utf-8", errors=errors
        )

    def commit(self) -> None:
        """Close and put in place; OSError (a full disk at the last flush) propagates,
        and the side file is then removed."""
        try:
            self.file.close()
            os.replace(self.path, self.target)
        except OSError:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and delete; never raises."""
        with contextlib.suppress(OSError):
            self.file.close()
        self.path.unlink(missing_ok=True)


def remove_stale_side_files(folder: Path) -> int:
    """Delete the side files of writers whose process is gone; returns how many. Never
    fails the caller: a file it cannot delete stays."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _SIDE_FILE.match(entry.name)
        if match is None or _writer_alive(int(match.group(1)), entry):
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except OSError:
            pass
    return removed


def _writer_alive(pid: int, entry: os.DirEntry[str]) -> bool:
    alive = process_alive(pid)
    if alive is not None:
        return alive
    try:  # the OS cannot say: judge by age instead
        return time.time() - entry.stat().st_mtime < _SIDE_FILE_STALE_S
    except OSError:
        return True


FILE_NOT_FOUND = "file not found"


def read_error(exc: OSError) -> str:
    """Why a file could not be read, in words; the caller's message names the file."""
    if isinstance(exc, FileNotFoundError):
        return FILE_NOT_FOUND
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not an image file"
    if isinstance(exc, PermissionError):
        return "permission denied: the file cannot be read"
    return f"cannot read the file ({exc.strerror or exc})"


def special_file_kind(mode: int) -> str:
    """What a path that is not a regular file is, for messages that refuse to read it."""
    import stat

    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def non_file_kind(path: Path) -> str | None:
    """What ``path`` is when it exists but is not a regular file ("a folder", "a named
    pipe"...), for messages that refuse to open it; None for a regular file or nothing
    there (the open that follows names that cause)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    return None if stat.S_ISREG(mode) else special_file_kind(mode)


def refuse_non_file_target(target: Path) -> None:
    """Raise ``OSError`` when a file written by renaming over ``target`` would replace a
    folder, a named pipe or a device. Why: the rename replaced whatever had the name, so
    ``--csv /dev/null`` run as root turned /dev/null into a regular file."""
    kind = non_file_kind(target)
    if kind == "a folder":
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    if kind is not None:
        raise OSError(errno.EEXIST, f"it is {kind}, not a file", str(target))


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` can name no file or folder at all, before anything uses it; None when
    it may name one (existing or not). Empty or white space only: ``Path("")`` is the
    current folder, so "" silently meant "here". A name too long for the system or a loop
    of symbolic links: ``Path.is_dir`` and ``exists`` raise on those instead of answering."""
    text = os.fspath(path)
    if not text.strip():
        return "the path is empty" if not text else "the path is empty (only white space)"
    try:
        os.stat(text)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return "the path is too long for this system (a name or the whole path)"
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links: it leads to no file or folder"
    except ValueError:  # a NUL byte: never from a command line, but from a manifest
        return "not a valid path (it holds a NUL byte)"
    return None


def folder_problem(path: Path) -> str | None:
    """Why ``path`` names no folder to walk; None when it does. ``Path.is_dir`` raised on
    a name too long and a link loop, and a named pipe read as "not a folder" without
    saying what it was."""
    problem = path_problem(path)
    if problem is not None or path.is_dir():
        return problem
    kind = non_file_kind(path)
    if kind is None:
        return "not a folder (a file)" if path.is_file() else "not found"
    return f"it is {kind}, not a folder"


def missing_or_kind(path: Path) -> str:
    """Why ``path``, neither a folder nor a file to read, cannot be used: "not found", or
    what it is (a named pipe given as a data source was reported "not found")."""
    kind = non_file_kind(path)
    return "not found" if kind is None else f"is {kind}, not a folder or a file"
