"""A folder of hostile inputs, built in code, for every front door's end-to-end test.

Issue 18 lists what an external probe fed the app; ``write_hostile_folder`` writes one
file of each kind into a directory and returns what a front door must do with each:

- ``"ok"``: a valid image; it loads and gets a result row (perhaps with a note).
- ``"error"``: its extension or content claims an image and it cannot be decoded (or
  decodes to non-finite values): an error row naming the cause, never a result.
- ``"skip"``: neither an image extension nor image content: skipped and counted.

Nothing is copied from ../shared/data: DICOMs come from ``tests.dicom_factory``.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.uid import RLELossless

from tests.dicom_factory import make_dicom

OK, ERROR, SKIP = "ok", "error", "skip"

# b"caf\xe9.png" is Latin-1, not UTF-8: os.fsdecode gives the surrogate-escaped str.
NON_UTF8_NAME = os.fsdecode(b"caf\xe9-latin1.png")
# '/' cannot be in a file name, so the URL has none: the leading '=' is what matters.
FORMULA_NAME = '=HYPERLINK("http:evil.example").png'
TAB_NEWLINE_NAME = "tab\there\nnewline.png"
CONTROL_NAME = "control.png"


@dataclass(frozen=True)
class Hostile:
    """One hostile file: what a front door must do with it, and why."""

    expect: str  # OK, ERROR or SKIP
    why: str


def small_png(size: int = 48, seed: int = 0) -> bytes:
    """A valid 8-bit grey PNG with some structure (not a flat image)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size, dtype=np.float32)[None, :] + rng.integers(0, 50, (size, 1))
    buf = io.BytesIO()
    Image.fromarray(ramp.clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _pixels(rows: int = 64, columns: int = 64) -> np.ndarray:
    """12-bit data with a full spread of values (so a huge slope overflows float32)."""
    return (np.arange(rows * columns, dtype=np.uint32).reshape(rows, columns) % 4096).astype(
        np.uint16
    )


def _dicom(directory: Path, name: str, **kwargs: object) -> None:
    with warnings.catch_warnings():  # pydicom warns on the invalid DS values, by design
        warnings.simplefilter("ignore")
        make_dicom(directory / name, _pixels(), bits_stored=12, **kwargs)  # type: ignore[arg-type]


def _dicom_rows_halved(path: Path) -> None:
    """A valid file whose Rows says half of what the pixel data holds."""
    make_dicom(path, _pixels(), bits_stored=12, extra={"Rows": 32})


def _dicom_empty_voi_lut(path: Path) -> None:
    make_dicom(path, _pixels(), bits_stored=12, voi_lut=(0, 16, [0, 100, 200]))
    from pydicom import dcmread

    ds = dcmread(path)
    ds.VOILUTSequence[0].LUTData = b""
    ds.save_as(path, enforce_file_format=True)


def write_hostile_folder(directory: str | os.PathLike[str]) -> dict[str, Hostile]:
    """Write the hostile files into ``directory`` (created if missing).

    Returns file name -> ``Hostile`` for every file written. Names are ``str``; the
    non-UTF-8 one is surrogate-escaped (``os.fsencode(name)`` gives its bytes back).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Hostile] = {}

    def dicom(name: str, expect: str, why: str, **kwargs: object) -> None:
        _dicom(d, name, **kwargs)
        out[name] = Hostile(expect, why)

    dicom(
        "slope-nan.dcm",
        ERROR,
        "RescaleSlope 'NaN': every pixel NaN",
        extra={"RescaleSlope": "NaN", "RescaleIntercept": "0"},
    )
    dicom(
        "slope-1e309.dcm",
        ERROR,
        "RescaleSlope '1e309' overflows to infinity",
        extra={"RescaleSlope": "1e309", "RescaleIntercept": "0"},
    )
    dicom(
        "slope-intercept-1e38.dcm",
        ERROR,
        "slope and intercept 1e38: pixels overflow float32",
        extra={"RescaleSlope": "1e38", "RescaleIntercept": "1e38"},
    )
    dicom(
        "window-center-nan.dcm",
        OK,
        "WindowCenter 'NaN': fallback window with a note",
        extra={"WindowCenter": "NaN", "WindowWidth": "400"},
    )
    dicom(
        "window-width-inf.dcm",
        OK,
        "WindowWidth 'inf': fallback window with a note",
        extra={"WindowCenter": "2048", "WindowWidth": "inf"},
    )
    _dicom_empty_voi_lut(d / "voi-lut-empty.dcm")
    out["voi-lut-empty.dcm"] = Hostile(OK, "VOI LUT with empty LUT Data: ignored with a note")
    _dicom_rows_halved(d / "rows-halved.dcm")
    out["rows-halved.dcm"] = Hostile(ERROR, "Rows halved: pixel data twice what the header says")
    dicom(
        "frames-1e6.dcm",
        ERROR,
        "NumberOfFrames 1000000 on a single-frame file",
        extra={"NumberOfFrames": "1000000"},
    )
    dicom(
        "frames-1e6-rle.dcm",
        ERROR,
        "NumberOfFrames 1000000 on a single-frame RLE file (one fragment)",
        transfer_syntax=RLELossless,
        extra={"NumberOfFrames": "1000000"},
    )

    (d / "x.dcm").write_bytes(b"")
    out["x.dcm"] = Hostile(ERROR, "empty file with a DICOM extension")
    (d / "x.png").write_text("this is not a PNG\n")
    out["x.png"] = Hostile(ERROR, "text file with a PNG extension")
    (d / "y.dcm").write_text("this is not a DICOM\n")
    out["y.dcm"] = Hostile(ERROR, "text file with a DICOM extension")
    png = small_png()
    (d / "truncated.png").write_bytes(png[: len(png) // 2])
    out["truncated.png"] = Hostile(ERROR, "PNG cut in half")

    for name, why in (
        (NON_UTF8_NAME, "valid PNG whose name is not UTF-8"),
        (FORMULA_NAME, "valid PNG whose name is a spreadsheet formula"),
        (TAB_NEWLINE_NAME, "valid PNG whose name holds a tab and a newline"),
        (CONTROL_NAME, "valid PNG (control)"),
    ):
        (d / name).write_bytes(png)
        out[name] = Hostile(OK, why)

    ramp = np.linspace(-1.0, 3.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    ramp[3, 5], ramp[7, 9] = np.nan, np.inf
    Image.fromarray(ramp, mode="F").save(d / "float-nan.tif", format="TIFF")
    out["float-nan.tif"] = Hostile(OK, "32-bit float TIFF with a NaN and an infinity")

    (d / "notes.txt").write_text("reading notes, not an image\n")
    out["notes.txt"] = Hostile(SKIP, "text file with neither image extension nor content")
    return out


def expectations(hostile: dict[str, Hostile]) -> dict[str, str]:
    """Name -> "ok" / "error" / "skip", the short form."""
    return {name: h.expect for name, h in hostile.items()}
