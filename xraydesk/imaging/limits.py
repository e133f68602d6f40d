"""Checks shared by the readers (and the batch engine), run before anything is decoded.

``check_file`` looks at ``stat`` only: a FIFO, a device such as /dev/zero or a huge
(perhaps sparse) file is refused at once, before a single byte is read or hashed,
because reading them blocks or takes minutes. ``check_size`` runs on header values.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from xraydesk.errors import ImageLoadError
from xraydesk.files import read_error, special_file_kind

MAX_PIXELS = 50_000_000  # ~7000 x 7000: far above any radiograph, far below a decompression bomb
# 2 GiB: above any radiograph file (a 7000 x 7000 x 16-bit frame is 98 MB; long
# multi-frame files are volumes or cine loops, not projections), below a disk image.
MAX_FILE_BYTES = 2 * 1024**3


def check_file(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> os.stat_result:
    """``stat`` of a regular, non-empty file no larger than ``max_bytes``, else
    ``ImageLoadError`` with the cause. Never opens the file, so it cannot block."""
    p = Path(path)
    try:
        info = p.stat()
    except OSError as exc:
        raise ImageLoadError(p, read_error(exc)) from None
    except ValueError as exc:  # e.g. an embedded NUL byte in the path
        raise ImageLoadError(p, f"not a valid file path ({exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageLoadError(p, "is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageLoadError(p, f"not a regular file ({special_file_kind(info.st_mode)}): not read")
    if info.st_size == 0:
        raise ImageLoadError(p, "empty file (0 bytes)")
    if info.st_size > max_bytes:
        raise ImageLoadError(
            p,
            f"file too large: {info.st_size:,} bytes exceeds the limit of {max_bytes:,} "
            "for an image file: not read",
        )
    return info


def check_size(path: Path, rows: int, columns: int, max_pixels: int) -> None:
    """Refuse degenerate images and images above the pixel cap, before any decoding."""
    if rows < 2 or columns < 2:
        raise ImageLoadError(path, f"degenerate image of {rows} x {columns} pixels")
    if rows * columns > max_pixels:
        raise ImageLoadError(
            path,
            f"image too large: {rows} x {columns} = {rows * columns:,} pixels exceeds the "
            f"limit of {max_pixels:,} (refused as a possible decompression bomb)",
        )
