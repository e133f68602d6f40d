"""DICOM files to XRay, in the order the standard displays them (PS3.3 C.11, PS3.4 N.2).

1. Modality LUT: Rescale Slope/Intercept, or a Modality LUT Sequence table.
2. VOI: a VOI LUT Sequence table is applied to the pixels (its output range becomes the
   default window); otherwise Window Center/Width is only *recorded* as ``XRay.window``
   so the viewer can re-window the full-depth modality values.
3. Presentation: MONOCHROME1 or Presentation LUT Shape INVERSE sets ``XRay.inverted``;
   ``XRay.render`` inverts after windowing. Raw pixels are never inverted here, because
   inverting before a non-linear VOI LUT gives a different (wrong) picture.

MONOCHROME1 together with Presentation LUT Shape INVERSE is inverted once, not twice:
PS3.3 C.8.11.6.1.2 (DX Image module) requires INVERSE *because* the data are MONOCHROME1,
so both attributes describe the same inversion, and conformant DX files carry both.
Toggling would show every such file as a negative. INVERSE on MONOCHROME2 data (seen in
practice) does invert.

Patient fields are copied into ``PatientInfo`` and nowhere else: nothing here logs them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom.uid as uids
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
    get_decoder,
)

from xraydesk.errors import ImageLoadError
from xraydesk.imaging.age import parse_dicom_age, parse_dicom_sex
from xraydesk.imaging.limits import check_size
from xraydesk.imaging.xray import ImageMetadata, PatientInfo, Window, XRay

# Elements above this size are read from disk only when used, so a huge file is
# refused on its header before its pixel data is read into memory.
_DEFER_SIZE = "4 MB"

# Multi-frame files of these modalities are slices of a volume, not projections.
VOLUME_MODALITIES = frozenset({"CT", "MR", "PT", "NM"})
# 3-D X-ray (tomosynthesis, 3-D angiography, cone-beam craniofacial) SOP classes.
VOLUME_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.13.1.1",
        "1.2.840.10008.5.1.4.1.1.13.1.2",
        "1.2.840.10008.5.1.4.1.1.13.1.3",
    }
)

_JPEG = ("JPEG", "pylibjpeg pylibjpeg-libjpeg")
_J2K = ("JPEG 2000", "pylibjpeg pylibjpeg-openjpeg")
_DECODER_HINTS: dict[str, tuple[str, str]] = {
    uids.JPEGBaseline8Bit: _JPEG,
    uids.JPEGExtended12Bit: _JPEG,
    uids.JPEGLossless: ("JPEG Lossless", "pylibjpeg pylibjpeg-libjpeg"),
    uids.JPEGLosslessSV1: ("JPEG Lossless", "pylibjpeg pylibjpeg-libjpeg"),
    uids.JPEGLSLossless: ("JPEG-LS", "pylibjpeg pylibjpeg-libjpeg"),
    uids.JPEGLSNearLossless: ("JPEG-LS", "pylibjpeg pylibjpeg-libjpeg"),
    uids.JPEG2000Lossless: _J2K,
    uids.JPEG2000: _J2K,
    uids.HTJ2KLossless: _J2K,
    uids.HTJ2KLosslessRPCL: _J2K,
    uids.HTJ2K: _J2K,
    uids.RLELossless: ("RLE", "pylibjpeg pylibjpeg-rle"),
}

_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_LINEAR_FUNCTIONS = ("LINEAR", "LINEAR_EXACT")


def read_dicom(path: Path, max_pixels: int) -> XRay:
    """Read a DICOM radiograph: header checks first, then decode frame 1 only."""
    ds = _read_dataset(path)
    if not any(keyword in ds for keyword in _PIXEL_TAGS):
        raise ImageLoadError(
            path,
            "DICOM file has no pixel data (e.g. a structured report or a presentation state)",
        )
    if "PixelData" not in ds:
        raise ImageLoadError(path, "floating-point pixel data (a parametric map), not a radiograph")
    tsyntax = _transfer_syntax(path, ds)
    rows, columns, frames, samples = _geometry(path, ds)
    _refuse_volume(path, ds, frames, samples)
    check_size(path, rows, columns, max_pixels)
    _check_decoder(path, tsyntax)
    _check_pixel_data_length(path, ds, tsyntax, rows, columns, frames, samples)

    decoded = _decode_first_frame(path, ds, tsyntax, frames)
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    notes: list[str] = []
    if frames > 1:
        notes.append(f"multi-frame DICOM with {frames} frames: showing frame 1")

    bits_stored = _int(ds, "BitsStored") or _int(ds, "BitsAllocated") or decoded.itemsize * 8
    if photometric == "PALETTE COLOR":
        decoded = apply_color_lut(decoded, ds)
        bits_stored = decoded.itemsize * 8
    if decoded.ndim == 3:  # colour: pydicom has already converted YBR to RGB
        pixels = _luminance(decoded)
        window = Window.from_range(0.0, float(2 ** min(bits_stored, 16) - 1))
        inverted = False
    elif decoded.ndim == 2:
        pixels = _modality_lut(path, ds, decoded)
        pixels, window = _voi(ds, pixels, notes)
        inverted = photometric == "MONOCHROME1" or _presentation_inverse(ds)
    else:
        raise ImageLoadError(path, _volume_cause(f"pixel array of {decoded.ndim} dimensions"))

    return XRay(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        bits_stored=int(bits_stored),
        window=window,
        metadata=_metadata(path, ds, tsyntax, photometric, frames),
        patient=_patient(ds),
        inverted=inverted,
        notes=tuple(notes),
    )


def _read_dataset(path: Path) -> Dataset:
    try:
        # force=True: files without the 128-byte preamble and "DICM" are common (NEMA)
        return dcmread(path, force=True, defer_size=_DEFER_SIZE)
    except Exception as exc:
        raise ImageLoadError(path, f"damaged or truncated DICOM header ({_one_line(exc)})") from exc


def _transfer_syntax(path: Path, ds: Dataset) -> uids.UID:
    """The file's transfer syntax; a file without file meta gets the one it was read in."""
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax:
        return uids.UID(str(tsyntax).strip("\0 "))
    if ds["PixelData"].is_undefined_length:
        raise ImageLoadError(
            path, "compressed DICOM pixel data but no file meta saying which compression"
        )
    implicit, little = ds.original_encoding
    if implicit is not False:  # pydicom's guess; None means it could not tell
        tsyntax = uids.ImplicitVRLittleEndian
    elif little is not False:
        tsyntax = uids.ExplicitVRLittleEndian
    else:
        tsyntax = uids.ExplicitVRBigEndian
    ds.file_meta.TransferSyntaxUID = tsyntax
    return tsyntax


def _geometry(path: Path, ds: Dataset) -> tuple[int, int, int, int]:
    rows, columns = _int(ds, "Rows"), _int(ds, "Columns")
    if rows is None or columns is None:
        raise ImageLoadError(path, "DICOM header lacks Rows or Columns")
    frames = _int(ds, "NumberOfFrames") or 1
    samples = _int(ds, "SamplesPerPixel") or 1
    return rows, columns, max(frames, 1), samples


def _volume_cause(detail: str) -> str:
    return f"a volume, not a 2-D radiograph ({detail})"


def _refuse_volume(path: Path, ds: Dataset, frames: int, samples: int) -> None:
    """Multi-frame CR/DX/MG/US/XA is shown as frame 1; CT/MR/PET/NM stacks and 3-D
    X-ray classes are volumes, and a single frame of them would mislead."""
    modality = str(ds.get("Modality", "") or "").upper()
    if frames > 1 and modality in VOLUME_MODALITIES:
        raise ImageLoadError(path, _volume_cause(f"{modality} with {frames} frames"))
    if str(ds.get("SOPClassUID", "")) in VOLUME_SOP_CLASSES:
        raise ImageLoadError(path, _volume_cause("a 3-D X-ray acquisition"))
    if samples not in (1, 3):
        raise ImageLoadError(
            path, f"{samples} samples per pixel is neither greyscale nor colour: not supported"
        )


def _check_decoder(path: Path, tsyntax: uids.UID) -> None:
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise ImageLoadError(
            path, f"unsupported DICOM transfer syntax {tsyntax.name or str(tsyntax)!r}"
        ) from None
    if not decoder.is_available:
        raise ImageLoadError(path, _missing_decoder_cause(tsyntax))


def _missing_decoder_cause(tsyntax: uids.UID) -> str:
    kind, packages = _DECODER_HINTS.get(tsyntax, (tsyntax.name, "pylibjpeg"))
    return f"{kind} DICOM needs a decoder: pip install {packages}"


def _check_pixel_data_length(
    path: Path, ds: Dataset, tsyntax: uids.UID, rows: int, columns: int, frames: int, samples: int
) -> None:
    """Refuse a header that does not describe its pixel data, before decoding: pydicom
    reads a native image whose Rows was halved as its top half, and decodes frame 1 of
    a compressed file that claims a million frames without a word."""
    if tsyntax.is_encapsulated:
        fragments = _fragment_count(ds, tsyntax)
        if fragments is not None and frames > fragments:
            raise ImageLoadError(
                path,
                f"damaged DICOM header: Number of Frames is {frames:,} but the compressed "
                f"pixel data holds only {fragments:,} fragment(s)",
            )
        return
    bits = _int(ds, "BitsAllocated") or 0
    if bits not in (1, 8, 16, 32, 64):
        raise ImageLoadError(path, f"damaged DICOM header: Bits Allocated {bits} is not valid")
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    per_pixel = 2 if photometric == "YBR_FULL_422" else samples  # 4:2:2 stores 2 per pixel
    expected = (rows * columns * frames * per_pixel * bits + 7) // 8
    actual = _value_length(ds)
    row_bytes = (columns * per_pixel * bits + 7) // 8
    if actual is None or expected <= actual < expected + row_bytes:  # allow padding only
        return
    geometry = f"{rows} x {columns} x {frames:,} frame(s) x {samples} sample(s) x {bits} bits"
    if actual < expected:
        cause = f"needs {expected:,} bytes but the file holds {actual:,}: truncated or wrong header"
    else:
        cause = (
            f"needs {expected:,} bytes but the pixel data holds {actual:,}: Rows, Columns or "
            "Number of Frames is wrong"
        )
    raise ImageLoadError(path, f"damaged DICOM: {geometry} {cause}")


def _value_length(ds: Dataset) -> int | None:
    """Pixel Data's length in bytes, from the element header when it is still deferred."""
    element = ds.get_item("PixelData")
    length = getattr(element, "length", None)  # a raw (not yet read) element
    if isinstance(length, int) and length != 0xFFFFFFFF:
        return length
    value = ds.PixelData
    return len(value) if isinstance(value, (bytes, bytearray)) else None


def _fragment_count(ds: Dataset, tsyntax: uids.UID) -> int | None:
    """How many fragments the encapsulated pixel data holds (each frame has at least one)."""
    endianness = "<" if tsyntax.is_little_endian else ">"
    try:
        buffer = io.BytesIO(ds.PixelData)
        parse_basic_offsets(buffer, endianness=endianness)
        return parse_fragments(buffer, endianness=endianness)[0]
    except Exception:  # unparsable items: the decoder reports the damage with its cause
        return None


def _decode_first_frame(path: Path, ds: Dataset, tsyntax: uids.UID, frames: int) -> np.ndarray:
    """Decode one frame only (pydicom decodes just that frame for every syntax)."""
    try:
        ds.pixel_array_options(index=0 if frames > 1 else None)
        return ds.pixel_array
    except RuntimeError as exc:  # pydicom: no usable plugin, or every plugin failed
        if "missing dependencies" in str(exc):
            raise ImageLoadError(path, _missing_decoder_cause(tsyntax)) from exc
        cause = f"damaged {tsyntax.name} pixel data: the decoder failed ({_one_line(exc)})"
        raise ImageLoadError(path, cause) from exc
    except (ValueError, EOFError, OSError, AttributeError, KeyError, TypeError) as exc:
        raise ImageLoadError(
            path, f"damaged or truncated DICOM pixel data ({tsyntax.name}): {_one_line(exc)}"
        ) from exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance (Pillow's weights), written as G + 0.299(R-G) + 0.114(B-G)
    so that grey stored as RGB comes back exactly."""
    green = rgb[..., 1].astype(np.float32)
    out = rgb[..., 0].astype(np.float32)
    out -= green
    out *= np.float32(0.299)
    out += green
    blue = rgb[..., 2].astype(np.float32)
    blue -= green
    blue *= np.float32(0.114)
    out += blue
    return out


def _modality_lut(path: Path, ds: Dataset, stored: np.ndarray) -> np.ndarray:
    """Stored values to modality values; a header whose numbers make pixels NaN or
    infinite is damaged, and an image drawn from such numbers must not be classified."""
    if ds.get("ModalityLUTSequence"):
        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    pixels = stored.astype(np.float32)
    slope = _float(ds, "RescaleSlope", 1.0)
    intercept = _float(ds, "RescaleIntercept", 0.0)
    assert slope is not None and intercept is not None
    with np.errstate(over="ignore", invalid="ignore"):
        if slope != 1.0:
            pixels *= np.float32(slope)
        if intercept != 0.0:
            pixels += np.float32(intercept)
    if not (math.isfinite(slope) and math.isfinite(intercept)) or not np.isfinite(pixels).all():
        raise ImageLoadError(
            path,
            f"damaged DICOM header: Rescale Slope {slope:g} and Intercept {intercept:g} "
            "give pixel values that are not finite numbers (NaN or infinity)",
        )
    return pixels


def _voi(ds: Dataset, pixels: np.ndarray, notes: list[str]) -> tuple[np.ndarray, Window]:
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
        return pixels, _range_window(pixels)
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function == "SIGMOID":
        return _sigmoid(ds, pixels, window, notes)
    if function not in _LINEAR_FUNCTIONS:
        notes.append(f"unknown VOI LUT Function {function!r}: shown with a linear window")
    return pixels, window


def _range_window(pixels: np.ndarray) -> Window:
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
        notes.append(f"the VOI LUT table cannot be used ({_one_line(exc) or type(exc).__name__})"
                     ": ignored")  # fmt: skip
        return None
    return out, Window.from_range(float(table.min()), float(table.max()))


def _file_window(ds: Dataset, pixels: np.ndarray, notes: list[str]) -> Window | None:
    """The first Window Center/Width, when both are present and usable."""
    center = _float(ds, "WindowCenter", None)
    width = _float(ds, "WindowWidth", None)
    if center is None or width is None:
        return None
    stated = f"the file's window (center {center:g}, width {width:g})"
    fallback = "showing the full pixel range"
    finite = math.isfinite(center) and math.isfinite(width)
    if not finite or width <= 0 or abs(center) > _FLOAT32_MAX or width > _FLOAT32_MAX:
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
    slope, intercept = _float(ds, "RescaleSlope", None), _float(ds, "RescaleIntercept", None)
    if slope is not None and intercept is not None:
        item.RescaleSlope, item.RescaleIntercept = slope, intercept
    try:
        with np.errstate(over="ignore"):  # exp overflow far from the center is exact 0
            out = np.asarray(apply_windowing(pixels, item), dtype=np.float32)
        y_min, y_max = _output_range(item)
    except Exception as exc:  # e.g. no Bits Stored: show the linear window instead
        notes.append(f"the sigmoid VOI function cannot be applied ({_one_line(exc)}): "
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


def _presentation_inverse(ds: Dataset) -> bool:
    return str(ds.get("PresentationLUTShape", "") or "").strip().upper() == "INVERSE"


def _metadata(
    path: Path, ds: Dataset, tsyntax: uids.UID, photometric: str, frames: int
) -> ImageMetadata:
    return ImageMetadata(
        path=path,
        format="DICOM",
        modality=_text(ds, "Modality"),
        view_position=_text(ds, "ViewPosition"),
        body_part=_text(ds, "BodyPartExamined"),
        photometric_interpretation=photometric or None,
        pixel_spacing=_spacing(ds),
        study_date=_text(ds, "StudyDate"),
        transfer_syntax=tsyntax.name or str(tsyntax),
        frames=frames,
        age_years=parse_dicom_age(_text(ds, "PatientAge")),
        sex=parse_dicom_sex(_text(ds, "PatientSex")),
    )


def _patient(ds: Dataset) -> PatientInfo:
    return PatientInfo(
        name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        birth_date=_text(ds, "PatientBirthDate"),
        accession=_text(ds, "AccessionNumber"),
    )


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            row, column = (float(v) for v in ds.get(keyword) or ())
        except (TypeError, ValueError):
            continue
        if row > 0 and column > 0:
            return row, column
    return None


def _first(value: Any) -> Any:
    """The first of a multi-valued element (Window Center may hold several windows)."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Sequence):
        return value[0] if len(value) else None
    return value


def _float(ds: Dataset, keyword: str, default: float | None) -> float | None:
    try:
        value = _first(ds.get(keyword))
        return default if value is None or value == "" else float(value)
    except Exception:  # a malformed optional number falls back to its default
        return default


def _int(ds: Dataset, keyword: str) -> int | None:
    value = _float(ds, keyword, None)
    return None if value is None else int(value)


def _text(ds: Dataset, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed optional element must not block the image
        return None
    text = "" if value is None else str(value).strip()
    return text or None
