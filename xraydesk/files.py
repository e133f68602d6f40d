"""File helpers every layer shares: content hashes and atomic writes.

``sha256_file`` reads in 1 MiB chunks so a large DICOM never sits in memory twice; model
weights are checked against the sha256 in their card and batch results are keyed by the
sha256 of each image's content. ``write_atomic`` writes to a temporary name beside the
target and renames over it, so a process killed at any instant leaves the old file or the
new one, never half of one (cards, splits, training histories and checkpoints' configs).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of the file's bytes; OSError propagates to the caller, who names the file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write to a temporary file in the same folder, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; models and cards are read by every user
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
