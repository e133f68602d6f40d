"""Listing local folders, globs and CSV tables for ``spark classify`` in Python, not in
the JVM.

Why not Spark's file index for local files: Java drops a file whose name is not valid
UTF-8 from a listing without a word (3 files in, 1 row out), and every input file must
give a row. Here names are taken as bytes and each file becomes a ``file:`` URI with its
bytes percent-encoded (``Path.as_uri``), which Spark carries as plain ASCII and the
workers decode back to the same bytes (``inputs.local_path``). Spark's rule is kept:
names starting with ``.`` or ``_`` are left out. The walk is iterative (a folder 1,000
levels deep is no recursion) and never enters the same folder twice (links back up).
"""

from __future__ import annotations

import csv
import glob
import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlparse

from xraydesk.errors import XRayDeskError

GLOB_CHARS = "*?["


def local_file_uris(location: str) -> list[str] | None:
    """Sorted ``file:`` URIs of every file under a local folder, a local file, or what a
    local glob matches; None for a glob only Spark expands (``{a,b}``)."""
    path = Path(location)
    if os.path.lexists(path):
        roots = [path]
    elif "{" in location:
        return None
    elif any(ch in location for ch in GLOB_CHARS):
        roots = [Path(p) for p in sorted(glob.glob(location))]
    else:
        raise XRayDeskError(f"{location}: not found")
    files: list[str] = []
    seen: set[tuple[int, int]] = set()
    for root in roots:
        files.extend(_walk(Path(os.path.abspath(root)), seen))
    if not files:
        raise XRayDeskError(f"{location}: nothing to classify (no file found)")
    return sorted(files)


def _walk(root: Path, seen: set[tuple[int, int]]) -> list[str]:
    try:
        info = root.stat()
    except OSError:
        return [root.as_uri()]  # a dead link or unreadable: its error row names the cause
    if not stat.S_ISDIR(info.st_mode):
        return [root.as_uri()]
    found: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = list(os.scandir(folder))
        except OSError:
            found.append(folder.as_uri())  # cannot be listed: an error row for the folder
            continue
        for entry in entries:
            if entry.name.startswith((".", "_")):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(Path(entry.path))
            else:
                found.append(Path(entry.path).as_uri())
    return found


def local_csv_paths(table: str, column: str) -> list[str | None] | None:
    """The ``column`` of a local CSV file with a header, read here as Spark reads it
    (every value a string, an empty one null, blank lines skipped), or None when ``table``
    is not one local file (a folder of parts, a glob, remote storage: Spark reads those).
    Why not Spark: its scan was a job of its own (the JVM's slowest, its first), and a
    one-file CSV is one partition, so spreading it over the cores cost a shuffle more.
    A missing column raises ``XRayDeskError`` naming the columns there are."""
    parsed = urlparse(table)
    if parsed.scheme not in ("", "file") or len(parsed.scheme) == 1:
        return None
    path = Path(unquote(parsed.path) if parsed.scheme else table)
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.DictReader(fh)
        names = reader.fieldnames or []
        if column not in names:
            raise XRayDeskError(
                f"{table}: no {column!r} column (columns: {', '.join(names)}); "
                "name the column with --path-column"
            )
        return [row[column] or None for row in reader]
