"""Discovery's walk (``imaging.discover``): a batch run and its count share each folder's
listing (``SharedListings``), so every folder is listed once, with the same files, in the
same order, as a walk of its own."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.batch_helpers import make_folder, write_png
from tests.listings import count_listings
from xraydesk.imaging.discover import DiscoveryStats, SharedListings, count_images, iter_images


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
