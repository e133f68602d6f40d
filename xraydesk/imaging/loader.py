"""The one front door from a file to an XRay.

Formats are recognised by content (magic bytes), never by extension: exported
radiographs often have no extension, or the wrong one. Every failure a file can cause
comes out as ``ImageLoadError`` naming the file and the cause, so callers (viewer,
batch engine, CLI) need exactly one ``except``.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from xraydesk.errors import ImageLoadError
from xraydesk.files import read_error
from xraydesk.imaging.dicom import read_dicom
from xraydesk.imaging.limits import MAX_PIXELS, check_file
from xraydesk.imaging.raster import read_raster
from xraydesk.imaging.xray import Window, XRay

__all__ = ["MAX_PIXELS", "is_image_file", "load_xray", "sniff_format"]

log = logging.getLogger(__name__)

_HEAD_BYTES = 132  # DICOM: 128-byte preamble + "DICM"
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_VR_CODES = b"AEASATCSDADSDTFLFDISLOLTOBODOFOLOVOWPNSHSLSQSSSTSVTMUCUIULUNURUSUTUV"
_DICOM_VRS = frozenset(_VR_CODES[i : i + 2] for i in range(0, len(_VR_CODES), 2))
UNRECOGNISED = "not an image: unrecognised content (expected PNG, JPEG, TIFF, BMP or DICOM)"


def sniff_format(head: bytes) -> str | None:
    """The format named by a file's first 132 bytes, or None."""
    if head[128:132] == b"DICM":  # checked first: a preamble may itself look like TIFF
        return "DICOM"
    if head.startswith(_PNG):
        return "PNG"
    if head.startswith(_JPEG):
        return "JPEG"
    if head[:4] in _TIFF:
        return "TIFF"
    if head.startswith(b"BM") and _bmp_header_size(head) in _BMP_HEADER_SIZES:
        return "BMP"
    if _looks_like_raw_dicom(head):
        return "DICOM"
    return None


def _bmp_header_size(head: bytes) -> int:
    return struct.unpack_from("<I", head, 14)[0] if len(head) >= 18 else 0


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A DICOM data set without preamble starts with a (0002,xxxx) or (0008,xxxx) tag,
    then an explicit VR or a short, even implicit length (group 0002/0008 elements are
    short strings; an undefined length there would be a sequence, never first)."""
    if len(head) < 8:
        return False
    group = struct.unpack_from("<H", head)[0]
    if group not in (0x0002, 0x0008):
        return False
    if head[4:6] in _DICOM_VRS:
        return True
    length = struct.unpack_from("<I", head, 4)[0]
    return length < 0x10000 and length % 2 == 0


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Cheap content sniff for folder walks: reads 132 bytes, never raises.

    Hidden files (name starting with '.', e.g. macOS '._x.png' resource forks) are not
    images; neither are folders, pipes or devices (opening a pipe would block).
    """
    try:
        p = Path(path)
        if p.name.startswith(".") or not p.is_file():
            return False
        with open(p, "rb") as handle:
            return sniff_format(handle.read(_HEAD_BYTES)) is not None
    except Exception:
        return False


def load_xray(
    path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS, data: bytes | None = None
) -> XRay:
    """Load a radiograph from PNG, JPEG, TIFF, BMP or DICOM.

    ``max_pixels`` caps rows x columns, checked on the header before decoding (for
    multi-frame DICOM only frame 1 is decoded, so the cap is per frame). ``data``: the
    file's bytes, when the caller has already checked the file (``limits.check_file``)
    and read them (the batch engine hashes them first); a raster is then decoded from
    them instead of opening the file twice more (DICOM is still read from ``path``).
    Raises only ``ImageLoadError``.
    """
    try:
        p = Path(path)
    except TypeError:
        raise ImageLoadError(str(path), "not a file path") from None
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise ImageLoadError(p, f"invalid pixel limit {max_pixels!r}")
    start = time.perf_counter()
    fmt = sniff_format(_read_head(p) if data is None else data[:_HEAD_BYTES])
    if fmt is None:
        raise ImageLoadError(p, UNRECOGNISED)
    try:
        if fmt == "DICOM":
            xray = read_dicom(p, max_pixels)
        else:
            xray = read_raster(p, fmt, max_pixels, data)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(p, "not enough memory to decode the image") from None
    except Exception as exc:  # a reader bug or an unforeseen file defect: still one type
        raise ImageLoadError(p, f"could not read this {fmt} file ({_describe(exc)})") from exc
    except BaseException as exc:
        # Decoders written in Rust (pylibjpeg-rle) panic on some damaged data, and pyo3's
        # PanicException derives from BaseException; interrupts and exits still propagate.
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        cause = f"damaged {fmt} data: the decoder crashed ({_describe(exc)})"
        raise ImageLoadError(p, cause) from exc
    xray = _check_finite(p, xray)
    # Format, size and time only: paths and DICOM fields can identify a patient.
    log.debug("loaded %s %dx%d in %.1f ms", fmt, *xray.shape, 1000 * (time.perf_counter() - start))
    return xray


def _read_head(path: Path) -> bytes:
    """First bytes of a regular, non-empty file of sane size, or a human error. The
    ``stat`` check comes first: opening a FIFO or reading a device would block."""
    check_file(path)
    try:
        with open(path, "rb") as handle:
            return handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise ImageLoadError(path, read_error(exc)) from None


def _check_finite(path: Path, xray: XRay) -> XRay:
    """Last line for every reader: no NaN or infinite pixel reaches a model or a screen,
    and a window that cannot be drawn is replaced by the full range, with a note."""
    if not np.isfinite(xray.pixels).all():
        raise ImageLoadError(path, "the decoded pixels hold values that are not finite numbers")
    window = xray.window
    if math.isfinite(window.center) and math.isfinite(window.width) and window.width > 0:
        return xray
    low, high = xray.value_range
    note = "the default window is not usable: showing the full pixel range"
    return replace(xray, window=Window.from_range(low, high), notes=(*xray.notes, note))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
