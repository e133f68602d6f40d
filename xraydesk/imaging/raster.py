"""PNG, JPEG, TIFF and BMP files to XRay, through Pillow.

Colour is reduced to luminance and alpha dropped (radiographs saved as RGB are grey in
all three channels); 16-bit grey keeps its full depth, because the viewer re-windows.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps

from xraydesk.errors import ImageLoadError
from xraydesk.imaging.limits import check_size
from xraydesk.imaging.xray import ImageMetadata, Window, XRay

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})

# Pillow warns (on stderr, naming its own source file) for images over 89 million pixels
# as it opens them; ``check_size`` then refuses anything over ``limits.MAX_PIXELS`` (50
# million) with a message naming the file, so the warning only added noise to the CLI's
# output and the logs. Set once here: ``warnings.catch_warnings`` is not thread-safe and the
# batch engine opens files on several threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def read_raster(path: Path, fmt: str, max_pixels: int, data: bytes | None = None) -> XRay:
    """Decode a raster image fully (so truncation is caught here, not in the viewer);
    from ``data``, the file's bytes, when the caller already read them (the batch engine
    hashes each file's bytes first), else from ``path``, which errors always name."""
    source = io.BytesIO(data) if data is not None else path
    try:
        with Image.open(source, formats=[fmt]) as img:
            columns, rows = img.size
            check_size(path, rows, columns, max_pixels)
            frames = int(getattr(img, "n_frames", 1) or 1)
            img.load()  # a full decode: truncated or corrupt data raises here
            img = _apply_exif_orientation(img)
            pixels, bits_stored, window = _grey_pixels(img)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(path, f"image too large (possible decompression bomb): {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageLoadError(path, f"not a valid {fmt} file: Pillow cannot identify it") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(path, f"damaged or truncated {fmt} file ({exc})") from exc

    notes: tuple[str, ...] = ()
    if frames > 1:
        kind = "multi-page TIFF" if fmt == "TIFF" else f"animated {fmt}"
        notes = (f"{kind} with {frames} frames: showing frame 1",)
    metadata = ImageMetadata(path=path, format=fmt, frames=frames)
    return XRay(
        pixels=pixels, bits_stored=bits_stored, window=window, metadata=metadata, notes=notes
    )


def _apply_exif_orientation(img: Image.Image) -> Image.Image:
    """Rotate/flip as the camera or scanner said (mostly phone photos of films)."""
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(img)
    return img


def _grey_pixels(img: Image.Image) -> tuple[np.ndarray, int, Window]:
    """Float32 grey values, the container's bit depth and the default window."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        return _deep(np.asarray(img), 16)
    if mode == "I":  # 32-bit integer: older Pillow gives 16-bit PNGs this mode
        values = np.asarray(img)
        if values.size and values.min() >= 0 and values.max() <= 0xFFFF:
            return _deep(values, 16)
        return _float_range(values.astype(np.float32), 32)
    if mode == "F":  # a copy: Pillow's array view is read-only, and NaN/inf are replaced
        return _float_range(np.array(img, dtype=np.float32), 32)
    if mode in ("LA", "La"):
        img = img.getchannel(0)
    elif mode != "L":
        img = _to_luminance(img)
    pixels = np.asarray(img).astype(np.float32)
    return pixels, 8, Window.from_range(0.0, 255.0)


def _to_luminance(img: Image.Image) -> Image.Image:
    """ITU-R 601 luminance (Pillow's L), alpha ignored; exotic modes go through RGB."""
    try:
        return img.convert("L")
    except ValueError:
        return img.convert("RGB").convert("L")


def _deep(values: np.ndarray, container_bits: int) -> tuple[np.ndarray, int, Window]:
    """Keep every bit; window over the bits the values actually use (12-bit data in a
    16-bit PNG would otherwise show nearly black), never fewer than 8."""
    pixels = values.astype(np.float32)
    top = int(values.max()) if values.size else 0
    used_bits = min(container_bits, max(8, top.bit_length()))
    return pixels, container_bits, Window.from_range(0.0, float(2**used_bits - 1))


def _float_range(pixels: np.ndarray, bits: int) -> tuple[np.ndarray, int, Window]:
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        raise ValueError("no finite pixel values")
    low, high = float(finite.min()), float(finite.max())
    np.nan_to_num(pixels, copy=False, nan=low, posinf=high, neginf=low)
    return pixels, bits, Window.from_range(low, high)
