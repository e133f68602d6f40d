"""Size checks shared by the raster and DICOM readers, run on header values before decoding."""

from __future__ import annotations

from pathlib import Path

from xraydesk.errors import ImageLoadError

MAX_PIXELS = 50_000_000  # ~7000 x 7000: far above any radiograph, far below a decompression bomb


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
