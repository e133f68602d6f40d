"""Finding the images to classify among the paths a user gave."""

from __future__ import annotations

import os
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
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from _walk(path, recursive, stats)
        elif path.exists() or path.is_symlink():
            yield path
        else:
            stats.missing.append(path)
            yield path  # the loader reports "file not found" as an error row


def _walk(folder: Path, recursive: bool, stats: DiscoveryStats) -> Iterator[Path]:
    try:
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
        else:
            stats.not_images += 1
    if recursive:
        for sub in subfolders:
            yield from _walk(sub, recursive, stats)
