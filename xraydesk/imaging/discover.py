"""Finding the images to classify among the paths a user gave."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xraydesk.imaging import is_image_file


@dataclass
class DiscoveryStats:
    """What was passed over while walking, so users are told rather than left guessing."""

    hidden: int = 0
    not_images: int = 0
    missing: list[Path] = field(default_factory=list)


def iter_images(
    paths: Iterable[str | Path], recursive: bool = False, stats: DiscoveryStats | None = None
) -> Iterator[Path]:
    """Yield image files in a stable order, streaming (never the whole tree in memory at once).

    Files named explicitly are always yielded, image or not, so that a bad file the user
    asked for gets an error row instead of vanishing. Inside folders, images are
    recognised by content (DICOM without an extension included); hidden entries and
    non-images are skipped and counted.
    """
    stats = stats if stats is not None else DiscoveryStats()
    visited: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from _walk(path, recursive, stats, visited)
        elif path.exists() or path.is_symlink():
            yield path
        else:
            stats.missing.append(path)
            yield path  # the loader reports "file not found" as an error row


def count_images(
    paths: Iterable[str | Path], recursive: bool = False, cancel: threading.Event | None = None
) -> int | None:
    """How many items ``iter_images`` will yield (for progress and time left); None if
    cancelled. Holds only a counter, so it is as cheap in memory as the walk itself."""
    count = 0
    for _ in iter_images(paths, recursive):
        count += 1
        if cancel is not None and cancel.is_set():
            return None
    return count


def _walk(
    folder: Path, recursive: bool, stats: DiscoveryStats, visited: set[tuple[int, int]]
) -> Iterator[Path]:
    try:
        info = folder.stat()
        key = (info.st_dev, info.st_ino)
        if key in visited:  # a symbolic link back up the tree (or the same folder twice)
            return
        visited.add(key)
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        stats.missing.append(folder)
        return
    subfolders = []
    for entry in entries:
        if entry.name.startswith("."):
            stats.hidden += 1
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            subfolders.append(Path(entry.path))
        elif is_image_file(entry.path):
            yield Path(entry.path)
        elif not os.path.lexists(entry.path):
            yield Path(entry.path)  # vanished since listed: the reader reports it, not a skip
        else:
            stats.not_images += 1
    if recursive:
        for sub in subfolders:
            yield from _walk(sub, recursive, stats, visited)
