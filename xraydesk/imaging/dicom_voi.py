"""The VOI stage of the DICOM display pipeline (PS3.3 C.11.2): what ``dicom.read_dicom``
does between the modality LUT and the presentation (inversion), in its own module so the
reader stays readable. See ``dicom``'s docstring for the order of the stages and why raw
pixels are never inverted before this stage.
"""

from __future__ import annotations

import math

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_voi, apply_windowing

from xraydesk.imaging.dicom_values import float_value, one_line
from xraydesk.imaging.xray import Window

FLOAT32_MAX = float(np.finfo(np.float32).max)
_LINEAR_FUNCTIONS = ("LINEAR", "LINEAR_EXACT")


def voi_stage(ds: Dataset, pixels: np.ndarray, notes: list[str]) -> tuple[np.ndarray, Window]:
    """The VOI stage (PS3.3 C.11.2), after the modality LUT and before any inversion.

    A VOI LUT table, or a sigmoid window, maps the pixels (pydicom's ``apply_voi`` and
    ``apply_windowing``) and its output range becomes the window. A linear window
    (LINEAR or LINEAR_EXACT) is only recorded, so the viewer re-windows full-depth
    values. A window that cannot be shown (NaN, infinite, not positive, or wholly
    outside the pixel values) falls back to the full range, with a note saying so.
    """
    if ds.get("VOILUTSequence"):
        mapped = _apply_voi_table(ds, pixels, notes)
        if mapped is not None:
            return mapped
    window = _file_window(ds, pixels, notes)
    if window is None:
        return pixels, range_window(pixels)
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function == "SIGMOID":
        return _sigmoid(ds, pixels, window, notes)
    if function not in _LINEAR_FUNCTIONS:
        notes.append(f"unknown VOI LUT Function {function!r}: shown with a linear window")
    return pixels, window


def range_window(pixels: np.ndarray) -> Window:
    return Window.from_range(float(pixels.min()), float(pixels.max()))


def _apply_voi_table(
    ds: Dataset, pixels: np.ndarray, notes: list[str]
) -> tuple[np.ndarray, Window] | None:
    """The first VOI LUT table through pydicom, or None (with a note) when unusable.

    Inputs are rounded and clamped to the table here: pydicom expects integers and
    would wrap values beyond 16 bits instead of clamping them to the last entry.
    """
    item = ds.VOILUTSequence[0]
    try:
        if not item.get("LUTData"):
            notes.append("the VOI LUT table is empty: ignored")
            return None
        entries, first = (int(v) for v in item.LUTDescriptor[:2])
        entries = entries or 65536
        index = np.rint(pixels).astype(np.int64)
        np.clip(index, first, first + entries - 1, out=index)
        table = apply_voi(np.arange(first, first + entries, dtype=np.int64), ds)
        out = np.asarray(apply_voi(index, ds), dtype=np.float32)
    except Exception as exc:  # a malformed table must not block the image
        notes.append(f"the VOI LUT table cannot be used ({one_line(exc) or type(exc).__name__})"
                     ": ignored")  # fmt: skip
        return None
    return out, Window.from_range(float(table.min()), float(table.max()))


def _file_window(ds: Dataset, pixels: np.ndarray, notes: list[str]) -> Window | None:
    """The first Window Center/Width, when both are present and usable."""
    center = float_value(ds, "WindowCenter", None)
    width = float_value(ds, "WindowWidth", None)
    if center is None or width is None:
        return None
    stated = f"the file's window (center {center:g}, width {width:g})"
    fallback = "showing the full pixel range"
    finite = math.isfinite(center) and math.isfinite(width)
    if not finite or width <= 0 or abs(center) > FLOAT32_MAX or width > FLOAT32_MAX:
        notes.append(f"{stated} is unusable: {fallback}")
        return None
    window = Window(center=center, width=width)
    if window.high < float(pixels.min()) or window.low > float(pixels.max()):
        notes.append(f"{stated} lies outside the pixel values: {fallback}")
        return None
    return window


def _sigmoid(
    ds: Dataset, pixels: np.ndarray, window: Window, notes: list[str]
) -> tuple[np.ndarray, Window]:
    """PS3.3 C.11.2.1.3.1 through pydicom: the output spans the modality value range."""
    item = Dataset()  # only what apply_windowing reads: the file's own dataset stays as is
    item.PhotometricInterpretation = "MONOCHROME2"  # inversion comes later, in render
    item.WindowCenter, item.WindowWidth = window.center, window.width
    item.VOILUTFunction = "SIGMOID"
    for keyword in ("BitsStored", "PixelRepresentation", "ModalityLUTSequence"):
        if keyword in ds:
            item[keyword] = ds[keyword]
    slope = float_value(ds, "RescaleSlope", None)
    intercept = float_value(ds, "RescaleIntercept", None)
    if slope is not None and intercept is not None:
        item.RescaleSlope, item.RescaleIntercept = slope, intercept
    try:
        with np.errstate(over="ignore"):  # exp overflow far from the center is exact 0
            out = np.asarray(apply_windowing(pixels, item), dtype=np.float32)
        y_min, y_max = _output_range(item)
    except Exception as exc:  # e.g. no Bits Stored: show the linear window instead
        notes.append(f"the sigmoid VOI function cannot be applied ({one_line(exc)}): "
                     "shown with a linear window")  # fmt: skip
        return pixels, window
    if not np.isfinite(out).all() or not y_max > y_min:
        notes.append("the sigmoid VOI function gives no usable values: shown with a linear window")
        return pixels, window
    return out, Window.from_range(y_min, y_max)


def _output_range(item: Dataset) -> tuple[float, float]:
    """The sigmoid's output range, as ``apply_windowing`` computes it (PS3.3 C.11.2.1.3.1)."""
    ones = np.array([-np.inf, np.inf])
    low, high = (float(v) for v in apply_windowing(ones, item))
    return min(low, high), max(low, high)
