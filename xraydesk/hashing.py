"""Content hashes of files, read in 1 MiB chunks so a large DICOM never sits in memory twice.

One implementation for both users: model weights are checked against the sha256 in their
card, and batch results are keyed by the sha256 of each image's content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of the file's bytes; OSError propagates to the caller, who names the file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
