"""Counting folder listings in a test: each ``os.scandir`` call, by the folder's path
(discovery must list each folder once, ``imaging.discover.SharedListings``)."""

from __future__ import annotations

import os
from collections import Counter

import pytest


def count_listings(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """A counter that ``os.scandir`` fills from now on, until the test ends."""
    calls: Counter = Counter()
    scandir = os.scandir

    def counting(path):
        calls[os.fspath(path)] += 1
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    return calls
