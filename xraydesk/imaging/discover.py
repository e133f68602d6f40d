"""Finding the images to classify among the paths a user gave."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xraydesk.files import path_problem
from xraydesk.imaging.loader import sniff_format

# Names that say "image": such a file is never skipped silently; if it cannot be decoded
# (empty, a text file, truncated) the reader's refusal becomes an error row.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".dcm", ".dicom", ".dic"}
)
_HEAD_BYTES = 132  # what ``sniff_format`` needs: DICOM's preamble and "DICM"
# An entry's path this long (characters) is asked ``path_problem`` (may it be past
# PATH_MAX?); a shorter one, not a symbolic link, cannot be too long nor a loop.
_LONG_PATH = 1024


SKIPPED_LISTED = 1000
SKIP_HIDDEN = "hidden (name starts with a dot)"
SKIP_NOT_IMAGE = "not an image (neither its name nor its content says PNG, JPEG, TIFF, BMP, DICOM)"


@dataclass
class DiscoveryStats:
    """What was passed over while walking, so users are told rather than left guessing."""

    hidden: int = 0
    not_images: int = 0
    missing: list[Path] = field(default_factory=list)  # inputs or folders that are gone
    # folders that exist but cannot be listed (no permission, I/O error), and paths that
    # can name nothing (a symbolic link loop, past PATH_MAX) -> the cause
    unreadable: dict[Path, str] = field(default_factory=dict)
    # the first SKIPPED_LISTED files passed over, with the reason, for the GUI to list
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def skip(self, path: Path, hidden: bool) -> None:
        """Count a file passed over (and name it, up to SKIPPED_LISTED)."""
        if hidden:
            self.hidden += 1
        else:
            self.not_images += 1
        if len(self.skipped) < SKIPPED_LISTED:
            self.skipped.append((path, SKIP_HIDDEN if hidden else SKIP_NOT_IMAGE))


def iter_images(
    paths: Iterable[str | Path],
    recursive: bool = False,
    stats: DiscoveryStats | None = None,
    listings: SharedListings | None = None,
) -> Iterator[Path]:
    """Yield image files in a stable order, streaming (never the whole tree in memory at once).

    Files named explicitly are always yielded, image or not, so that a bad file the user
    asked for gets an error row instead of vanishing. Inside folders, a file is yielded
    when its name (``IMAGE_EXTENSIONS``) or its content (DICOM without an extension
    included) says image, or when it cannot be read to tell (the reader then names the
    cause); hidden entries and files with neither are skipped and counted. A folder that
    cannot be listed, and a path that can name nothing (a loop of symbolic links, a path
    too long for the system: ``files.path_problem``), is recorded in ``stats.unreadable``
    with the cause and the walk goes on: never yielded, as ``Path.is_file`` and
    ``resolve`` raise on those instead of answering.
    ``listings``: shared with a ``count_images`` of the same inputs, so each folder is
    listed once for both (``SharedListings``).
    """
    stats = stats if stats is not None else DiscoveryStats()
    visited: set[tuple[int, int]] = set()
    try:
        for raw in paths:
            path = Path(raw)
            problem = path_problem(raw)  # of the text: Path("") is the current folder
            if problem is not None:
                stats.unreadable[path] = problem
            elif path.is_dir():
                yield from _walk(path, recursive, stats, visited, listings)
            elif path.exists() or path.is_symlink():
                yield path
            else:
                stats.missing.append(path)
                yield path  # the loader reports "file not found" as an error row
    finally:
        if listings is not None:
            listings.walk_ended()


def count_images(
    paths: Iterable[str | Path],
    recursive: bool = False,
    cancel: threading.Event | None = None,
    listings: SharedListings | None = None,
) -> int | None:
    """How many rows a run over ``iter_images`` makes (its items and one per unreadable
    folder), for progress and time left; None if cancelled. Holds only a counter, so it
    is as cheap in memory as the walk itself; ``listings``: shared with the run's walk
    (``SharedListings``)."""
    count = 0
    stats = DiscoveryStats()
    for _ in iter_images(paths, recursive, stats, listings):
        count += 1
        if cancel is not None and cancel.is_set():
            return None
    return count + len(stats.unreadable)


def claims_image(path: str | os.PathLike[str]) -> bool:
    """Whether a file found in a folder deserves a row: an image name, image content, or
    content that cannot be read to tell. Never opens anything but a regular file (a pipe
    would block)."""
    if os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS:
        return True
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return False  # a pipe, socket or device without an image name
        with open(path, "rb") as handle:
            return sniff_format(handle.read(_HEAD_BYTES)) is not None
    except FileNotFoundError:
        return not os.path.lexists(path)  # vanished since listed: reported; a dead link: not
    except OSError:
        return True  # no permission, I/O error: the reader names the cause in an error row


def _walk(
    root: Path,
    recursive: bool,
    stats: DiscoveryStats,
    visited: set[tuple[int, int]],
    listings: SharedListings | None,
) -> Iterator[Path]:
    """Files of a folder by name, then each subfolder in turn (depth first). Iterative,
    with a stack of subfolder lists: a folder 1,000 levels deep is no recursion."""
    stack: list[Iterator[Path]] = [iter([root])]
    while stack:
        folder = next(stack[-1], None)
        if folder is None:
            stack.pop()
            continue
        subfolders = yield from _folder(folder, stats, visited, listings)
        if recursive and subfolders:
            stack.append(iter(subfolders))


def _folder(
    folder: Path,
    stats: DiscoveryStats,
    visited: set[tuple[int, int]],
    listings: SharedListings | None,
) -> Generator[Path, None, list[Path]]:
    """Yield the images of one folder; return its subfolders."""
    try:
        info = folder.stat()
        key = (info.st_dev, info.st_ino)
        if key in visited:  # a symbolic link back up the tree (or the same folder twice)
            return []
        visited.add(key)
        entries = listings.entries(folder, key) if listings else _listing(folder)
    except (FileNotFoundError, NotADirectoryError):
        stats.missing.append(folder)
        return []
    except OSError as exc:
        stats.unreadable[folder] = _listing_error(exc)
        return []
    subfolders = []
    for entry in entries:
        if entry.name.startswith("."):
            stats.skip(Path(entry.path), hidden=True)
            continue
        problem = _entry_problem(entry)
        if problem is not None:
            stats.unreadable[Path(entry.path)] = problem
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            subfolders.append(Path(entry.path))
        elif claims_image(entry.path):
            yield Path(entry.path)
        else:
            stats.skip(Path(entry.path), hidden=False)
    return subfolders


def _entry_problem(entry: os.DirEntry[str]) -> str | None:
    """``path_problem`` of a listed entry, asked only where there can be one (a symbolic
    link, a long path): a stat more per plain file would slow a folder of a million."""
    if len(entry.path) < _LONG_PATH and not entry.is_symlink():
        return None
    return path_problem(entry.path)


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    """A folder's entries by name: one ``scandir``, held whole to be sorted."""
    return sorted(os.scandir(folder), key=lambda e: e.name)


LISTINGS_HELD = 50_000  # entries one walk may keep waiting for the other (about 15 MB)


class SharedListings:
    """Each folder's sorted listing, made once for two walks of the same inputs: a batch
    run's (``iter_images``) and its count for the time left (``count_images``, in a side
    thread).

    Why: each walk listed every folder itself, so a run listed the whole tree twice, and
    a flat folder of a million files was held twice at once (two sorted lists of a
    million entries). Now whichever walk reaches a folder first lists it and keeps the
    listing for the other, which takes it (the walks meet the folders in the same order);
    one that arrives while the other lists it waits for that listing. Beyond ``held``
    entries waiting to be taken (one folder is always kept, however large), a listing is
    not kept and the later walk lists that folder itself, so memory stays bounded when
    the count runs far ahead of the run; once either walk has ended, nothing more is
    kept. A folder that cannot be listed is tried once; both walks see its error."""

    def __init__(self, held: int = LISTINGS_HELD) -> None:
        self.held = held
        self._kept: dict[tuple, list[os.DirEntry[str]] | OSError] = {}
        self._kept_entries = 0
        self._busy: dict[tuple, threading.Event] = {}  # being listed by one walk now
        self._not_kept: set[tuple] = set()  # listed by one walk: the other lists it too
        self._ended = False
        self._lock = threading.Lock()

    def entries(self, folder: Path, key: tuple[int, int]) -> list[os.DirEntry[str]]:
        """``folder``'s entries by name (``key``: its device and inode); raises the
        ``OSError`` of listing it."""
        key = (*key, str(folder))  # the entries' paths are made from the folder's path
        with self._lock:
            busy = self._busy.get(key)
            first = busy is None and key not in self._kept and key not in self._not_kept
            if first:
                busy = self._busy[key] = threading.Event()
        if not first:
            if busy is not None:
                busy.wait()
            return self._take(key, folder)
        try:
            found: list[os.DirEntry[str]] | OSError = _listing(folder)
        except OSError as exc:
            found = exc
        with self._lock:
            size = len(found) if isinstance(found, list) else 0
            if self._ended:  # the other walk will not come here
                pass
            elif self._kept and self._kept_entries + size > self.held:
                self._not_kept.add(key)
            else:
                self._kept[key] = found
                self._kept_entries += size
            del self._busy[key]
            busy.set()
        if isinstance(found, OSError):
            raise found
        return found

    @property
    def waiting(self) -> int:
        """Entries listed by one walk and not yet taken by the other."""
        with self._lock:
            return self._kept_entries

    def walk_ended(self) -> None:
        """One walk is over (done, or stopped): keep nothing more for it."""
        with self._lock:
            self._ended = True

    def _take(self, key: tuple, folder: Path) -> list[os.DirEntry[str]]:
        """The listing the other walk made of ``folder``; listed again if not kept."""
        with self._lock:
            found = self._kept.pop(key, None)
            self._not_kept.discard(key)
            if isinstance(found, list):
                self._kept_entries -= len(found)
        if found is None:
            return _listing(folder)
        if isinstance(found, OSError):
            raise found
        return found


def _listing_error(exc: OSError) -> str:
    """Why a folder could not be listed, for its error row (the row names the folder)."""
    if isinstance(exc, PermissionError):
        cause = "permission denied: the folder cannot be read"
    else:
        cause = f"the folder cannot be read ({exc.strerror or exc})"
    return f"{cause}; the images in it were not classified"
