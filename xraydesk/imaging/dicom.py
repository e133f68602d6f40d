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
from pathlib import Path

import numpy as np
import pydicom.uid as uids
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    get_decoder,
)

from xraydesk.errors import ImageLoadError
from xraydesk.imaging.age import parse_dicom_age, parse_dicom_sex
from xraydesk.imaging.dicom_values import float_value, int_value, one_line, text_value
from xraydesk.imaging.dicom_voi import voi_stage
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


def read_dicom(path: Path, max_pixels: int) -> XRay:
    """Read a DICOM radiograph: header checks first, then decode frame 1 only."""
    ds = _read_dataset(path)
    if not any(keyword in ds for keyword in _PIXEL_TAGS):
        if _has_pixel_data_tag(path):  # pydicom drops an element the file ends inside
            raise ImageLoadError(
                path, "damaged or truncated DICOM: the file ends inside its pixel data"
            )
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

    bits_stored = (
        int_value(ds, "BitsStored") or int_value(ds, "BitsAllocated") or decoded.itemsize * 8
    )
    if photometric == "PALETTE COLOR":
        decoded = apply_color_lut(decoded, ds)
        bits_stored = decoded.itemsize * 8
    if decoded.ndim == 3:  # colour: pydicom has already converted YBR to RGB
        pixels = _luminance(decoded)
        window = Window.from_range(0.0, float(2 ** min(bits_stored, 16) - 1))
        inverted = False
    elif decoded.ndim == 2:
        pixels = _modality_lut(path, ds, decoded)
        pixels, window = voi_stage(ds, pixels, notes)
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


# The Pixel Data tag (7FE0,0010) as it is written in little- and big-endian files.
_PIXEL_DATA_TAG_BYTES = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


def _has_pixel_data_tag(path: Path) -> bool:
    """Whether the file holds the Pixel Data tag although pydicom read no pixel data: a file
    cut short inside its (encapsulated) pixel data, which pydicom drops with only a warning.
    Read only on that error path; ``check_file`` has bounded the file's size."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return any(tag in data for tag in _PIXEL_DATA_TAG_BYTES)


def _read_dataset(path: Path) -> Dataset:
    try:
        # force=True: files without the 128-byte preamble and "DICM" are common (NEMA)
        return dcmread(path, force=True, defer_size=_DEFER_SIZE)
    except Exception as exc:
        raise ImageLoadError(path, f"damaged or truncated DICOM header ({one_line(exc)})") from exc


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
    rows, columns = int_value(ds, "Rows"), int_value(ds, "Columns")
    if rows is None or columns is None:
        raise ImageLoadError(path, "DICOM header lacks Rows or Columns")
    frames = int_value(ds, "NumberOfFrames") or 1
    samples = int_value(ds, "SamplesPerPixel") or 1
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
    bits = int_value(ds, "BitsAllocated") or 0
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
        cause = f"damaged {tsyntax.name} pixel data: the decoder failed ({one_line(exc)})"
        raise ImageLoadError(path, cause) from exc
    except (ValueError, EOFError, OSError, AttributeError, KeyError, TypeError) as exc:
        raise ImageLoadError(
            path, f"damaged or truncated DICOM pixel data ({tsyntax.name}): {one_line(exc)}"
        ) from exc


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
    slope = float_value(ds, "RescaleSlope", 1.0)
    intercept = float_value(ds, "RescaleIntercept", 0.0)
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


def _presentation_inverse(ds: Dataset) -> bool:
    return str(ds.get("PresentationLUTShape", "") or "").strip().upper() == "INVERSE"


def _metadata(
    path: Path, ds: Dataset, tsyntax: uids.UID, photometric: str, frames: int
) -> ImageMetadata:
    return ImageMetadata(
        path=path,
        format="DICOM",
        modality=text_value(ds, "Modality"),
        view_position=text_value(ds, "ViewPosition"),
        body_part=text_value(ds, "BodyPartExamined"),
        photometric_interpretation=photometric or None,
        pixel_spacing=_spacing(ds),
        study_date=text_value(ds, "StudyDate"),
        transfer_syntax=tsyntax.name or str(tsyntax),
        frames=frames,
        age_years=parse_dicom_age(text_value(ds, "PatientAge")),
        sex=parse_dicom_sex(text_value(ds, "PatientSex")),
    )


def _patient(ds: Dataset) -> PatientInfo:
    return PatientInfo(
        name=text_value(ds, "PatientName"),
        patient_id=text_value(ds, "PatientID"),
        birth_date=text_value(ds, "PatientBirthDate"),
        accession=text_value(ds, "AccessionNumber"),
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
