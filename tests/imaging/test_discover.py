"""Discovery's walk (``imaging.discover``): a batch run and its count share each folder's
listing (``SharedListings``), so every folder is listed once, with the same files, in the
same order, as a walk of its own."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.batch_helpers import make_folder, write_png
from tests.listings import count_listings
from xraydesk.imaging.discover import (
    SKIP_NOT_IMAGE,
    DiscoveryStats,
    SharedListings,
    count_images,
    iter_images,
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A study folder (images, a DICOM without extension, a truncated PNG, a hidden file,
    a text file, a subfolder) beside 12 folders of 8 images, and an empty folder."""
    root = make_folder(tmp_path / "root" / "study")
    for k in range(12):
        for j in range(8):
            write_png(tmp_path / "root" / f"series{k:02d}" / f"img{j}.png", seed=10 * k + j)
    (tmp_path / "root" / "empty").mkdir()
    return root.parent


def _folders(root: Path) -> set[str]:
    return {str(root)} | {str(p) for p in root.rglob("*") if p.is_dir()}


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How many times each folder was listed (``os.scandir`` calls, by path)."""
    return count_listings(monkeypatch)


def _walk(root: Path, listings: SharedListings | None) -> tuple[list[Path], DiscoveryStats]:
    stats = DiscoveryStats()
    return list(iter_images([root], True, stats, listings)), stats


def test_a_walk_and_its_count_list_each_folder_once(tree: Path, listed: Counter):
    folders = _folders(tree)
    listed.clear()
    alone, alone_stats = _walk(tree, None)
    assert set(listed) == folders and set(listed.values()) == {1}
    listed.clear()

    listings = SharedListings()
    total = count_images([tree], True, listings=listings)
    found, stats = _walk(tree, listings)
    assert found == alone and total == len(alone) == 8 + 12 * 8  # make_folder: 8 rows
    assert (stats.hidden, stats.not_images) == (alone_stats.hidden, alone_stats.not_images)
    assert set(listed) == folders and set(listed.values()) == {1}
    assert listings.waiting == 0  # every listing kept for the run was taken


def test_at_the_same_time_each_folder_is_listed_once(tree: Path, listed: Counter):
    """The batch run's way: the count in a side thread while the run walks; whichever
    comes first lists a folder, the other waits for it or takes it."""
    folders = _folders(tree)
    alone, _ = _walk(tree, None)
    for _ in range(5):
        listed.clear()
        listings = SharedListings()
        counted: list[int | None] = []

        def count(out: list[int | None], shared: SharedListings) -> None:
            out.append(count_images([tree], True, listings=shared))

        counter = threading.Thread(target=count, args=(counted, listings))
        counter.start()
        found, _ = _walk(tree, listings)
        counter.join()
        assert found == alone and counted == [len(alone)]
        assert set(listed) == folders and set(listed.values()) == {1}


def test_listings_kept_for_the_other_walk_are_bounded(tree: Path, listed: Counter):
    """Beyond ``held`` entries waiting, a listing is not kept (the other walk lists that
    folder itself): a count far ahead of the run does not hold the whole tree."""
    alone, _ = _walk(tree, None)
    listed.clear()
    listings = SharedListings(held=20)
    assert count_images([tree], True, listings=listings) == len(alone)
    assert 0 < listings.waiting <= 20
    assert _walk(tree, listings)[0] == alone
    assert listings.waiting == 0 and set(listed.values()) == {1, 2}


def test_after_one_walk_stops_nothing_more_is_kept(tree: Path, listed: Counter):
    """A count stopped early (the run ended, or was cancelled) leaves the run's walk
    keeping nothing for it."""
    alone, _ = _walk(tree, None)
    listings = SharedListings()
    stop = threading.Event()
    stop.set()
    assert count_images([tree], True, stop, listings) is None
    assert _walk(tree, listings)[0] == alone
    assert listings.waiting == 0


def test_a_folder_that_cannot_be_listed_is_tried_once_for_both(
    tree: Path, listed: Counter, monkeypatch: pytest.MonkeyPatch
):
    locked = tree / "series03"
    counting = os.scandir

    def refuse(path):
        if os.fspath(path) == str(locked):
            counting(path)  # counted, then refused
            raise PermissionError(13, "Permission denied", str(path))
        return counting(path)

    monkeypatch.setattr(os, "scandir", refuse)
    listings = SharedListings()
    total = count_images([tree], True, listings=listings)
    found, stats = _walk(tree, listings)
    assert list(stats.unreadable) == [locked] and "permission denied" in stats.unreadable[locked]
    assert total == len(found) + 1  # one error row for the folder
    assert not any(p.parent == locked for p in found)
    assert listed[str(locked)] == 1


# -- paths that can name nothing, and named pipes, inside a walked folder ----------------------

LOOP = "a loop of symbolic links"
TOO_LONG = "the path is too long for this system"


def _past_path_max(root: Path) -> Path:
    """A folder deeper than PATH_MAX (4,096) holding an image, made through folder
    descriptors (a path that long cannot be opened whole); returns its top folder."""
    top = root / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(22):  # 22 x 201 characters
            os.mkdir("n" * 200, dir_fd=fd)
            inner = os.open("n" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        png = os.open("lost.png", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
        os.close(png)
    finally:
        os.close(fd)
    return top


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links on this system")
def test_a_link_loop_and_a_path_past_path_max_are_reported_and_the_walk_goes_on(tmp_path: Path):
    folder = make_folder(tmp_path / "study")
    before = list(iter_images([folder], True))
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "loop").symlink_to("loop")
    deep = _past_path_max(folder)
    stats = DiscoveryStats()
    found = list(iter_images([folder], True, stats))  # raised nowhere
    assert [folder / "loop", folder / "loop.png"] == sorted(
        p for p, cause in stats.unreadable.items() if cause.startswith(LOOP)
    )
    too_long = [p for p, cause in stats.unreadable.items() if cause.startswith(TOO_LONG)]
    assert len(too_long) == 1 and too_long[0].is_relative_to(deep)
    assert len(stats.unreadable) == 3
    assert found == before  # every other image still walked; the three never yielded
    assert count_images([folder], True) == len(found) + 3  # one error row each


def test_an_input_empty_too_long_or_a_loop_is_reported_not_raised(tmp_path: Path):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop.name)
    long_name = tmp_path / ("x" * 300 + ".png")
    deep = tmp_path.joinpath(*["d"] * 2100, "a.png")
    good = write_png(tmp_path / "good.png", seed=3)
    stats = DiscoveryStats()
    found = list(iter_images([long_name, loop, "", deep, good], stats=stats))
    assert found == [good]  # "" is not the current folder
    assert stats.unreadable[Path("")] == "the path is empty"
    assert stats.unreadable[long_name].startswith(TOO_LONG)
    assert stats.unreadable[deep].startswith(TOO_LONG)
    assert stats.unreadable[loop].startswith(LOOP)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_named_pipe_in_a_folder_is_never_opened(tmp_path: Path):
    folder = make_folder(tmp_path / "study")
    os.mkfifo(folder / "pipe")
    os.mkfifo(folder / "pipe.png")
    out: dict[str, object] = {}

    def walk() -> None:
        stats = DiscoveryStats()
        out["found"] = list(iter_images([folder], True, stats))
        out["stats"] = stats

    worker = threading.Thread(target=walk, daemon=True)
    worker.start()
    worker.join(20)
    try:
        assert not worker.is_alive(), "the walk opened a named pipe and waits for a writer"
    finally:
        for pipe in ("pipe", "pipe.png"):  # a reader stuck opening it gets an end of file
            with contextlib.suppress(OSError):
                os.close(os.open(folder / pipe, os.O_WRONLY | os.O_NONBLOCK))
    found, stats = out["found"], out["stats"]
    assert folder / "pipe.png" in found  # its name says image: the reader refuses it on stat
    assert folder / "pipe" not in found
    assert (folder / "pipe", SKIP_NOT_IMAGE) in stats.skipped
