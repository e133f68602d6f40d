"""Synthetic DICOM files built in code.

Tests need DICOM cases the real samples lack (rescale, VOI LUT tables, multi-frame,
colour, RLE, JPEG 2000, JPEG Lossless, no pixel data ...), and no real patient file may
be copied into the repository, so these helpers write small files into ``tmp_path``.

``make_dicom`` covers the Image Pixel, VOI LUT and Modality LUT attributes; JPEG Lossless
(process 14, first-order prediction) has no encoder in pydicom, Pillow or pylibjpeg, so
``encode_jpeg_lossless`` here writes that bit stream itself (ITU-T T.81 annex H).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    RLELossless,
    generate_uid,
)

SOP_CLASSES = {
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "US": "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image Storage
    "SR": "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR Storage
}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# (first mapped input value, bits per entry, table)
LutSpec = tuple[int, int, Sequence[int] | np.ndarray]


def make_dicom(
    path: str | Path,
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    rescale: tuple[float, float] | None = None,
    window: tuple[float | Sequence[float], float | Sequence[float]] | None = None,
    voi_lut: LutSpec | None = None,
    modality_lut: LutSpec | None = None,
    presentation_lut_shape: str | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    preamble: bool = True,
    modality: str = "DX",
    with_patient: bool = True,
    pixel_spacing: tuple[float, float] | None = (0.143, 0.143),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a small DICOM file and return its path.

    ``pixels`` is ``(rows, cols)`` or ``(frames, rows, cols)`` for monochrome data and
    ``(rows, cols, 3)`` or ``(frames, rows, cols, 3)`` in RGB for colour data: the
    factory converts RGB to YBR_FULL itself, and YBR_FULL_422 is written as JPEG
    Baseline (Pillow's 4:2:2 encoder). Samples per pixel and the number of frames
    follow from the shape and ``photometric``. ``pixels=None`` writes a dataset with no
    Pixel Data, like a structured report. ``window`` values may be sequences
    (multi-valued Window Center/Width). ``preamble=False`` writes neither the 128-byte
    preamble nor the file meta group, in ``transfer_syntax`` encoding (native only).
    ``extra`` sets or overrides any attribute by keyword last, to build broken files.
    JPEG 2000 (OpenJPEG's default 6 resolutions) needs at least 32 pixels a side.
    """
    path = Path(path)
    tsyntax = UID(transfer_syntax)
    ds = _base_dataset(modality if pixels is not None else "SR", with_patient, pixel_spacing)

    if pixels is not None:
        arr = np.asarray(pixels)
        bits = bits_stored or arr.dtype.itemsize * 8
        native = arr
        if photometric == "YBR_FULL":
            native = convert_color_space(arr, "RGB", "YBR_FULL").astype(arr.dtype)
        # YBR_FULL_422 only exists encapsulated here: set the array as RGB, then encode.
        ds.set_pixel_data(native, "RGB" if photometric == "YBR_FULL_422" else photometric, bits)
        ds.PhotometricInterpretation = photometric
        _encode(ds, arr, tsyntax, bits, photometric)
    else:
        ds.file_meta.TransferSyntaxUID = (
            ExplicitVRLittleEndian if tsyntax.is_compressed else tsyntax
        )

    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = (f"{rescale[0]:g}", f"{rescale[1]:g}")
        ds.RescaleType = "US"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        ds.VOILUTSequence = [_lut_item(voi_lut)]
    if modality_lut is not None:
        item = _lut_item(modality_lut)
        item.ModalityLUTType = "US"
        ds.ModalityLUTSequence = [item]
    if presentation_lut_shape is not None:
        ds.PresentationLUTShape = presentation_lut_shape
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)

    _write(path, ds, tsyntax, preamble)
    return path


def _base_dataset(
    modality: str, with_patient: bool, pixel_spacing: tuple[float, float] | None
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = SOP_CLASSES.get(modality, SECONDARY_CAPTURE)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.Modality = modality
    ds.StudyDate = "20240102"
    ds.ViewPosition = "PA"
    ds.BodyPartExamined = "CHEST"
    if pixel_spacing is not None:
        ds.ImagerPixelSpacing = list(pixel_spacing)
    if with_patient:
        ds.PatientName = "Doe^Jane"
        ds.PatientID = "P-0001"
        ds.PatientBirthDate = "19700101"
    return ds


def _lut_item(spec: LutSpec) -> Dataset:
    first_mapped, bits, table = spec
    values = [int(v) for v in np.asarray(table).ravel()]
    item = Dataset()
    # 65536 entries are written as 0 (PS3.3 C.11.2.1.1)
    item.add_new(0x00283002, "US", [len(values) % 65536, first_mapped, bits])
    item.add_new(0x00283006, "US", values)
    return item


def _encode(ds: Dataset, arr: np.ndarray, tsyntax: UID, bits: int, photometric: str) -> None:
    """Replace the native Pixel Data just set with ``tsyntax``'s encoding."""
    if not tsyntax.is_compressed:
        ds.file_meta.TransferSyntaxUID = tsyntax
        return
    if tsyntax == RLELossless:
        ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
        return
    if tsyntax == JPEG2000Lossless:
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
        return
    frames = arr if _is_multiframe(arr, photometric) else arr[np.newaxis]
    if tsyntax in (JPEGLosslessSV1, JPEGLossless):
        if photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise ValueError("the JPEG Lossless encoder here writes monochrome data only")
        encoded = [encode_jpeg_lossless(frame, bits) for frame in frames]
    elif tsyntax == JPEGBaseline8Bit:
        if arr.dtype != np.uint8:
            raise ValueError("JPEG Baseline holds 8-bit data only")
        encoded = [_encode_jpeg_baseline(frame) for frame in frames]
    else:
        raise ValueError(f"no encoder here for {tsyntax.name}")
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = tsyntax


def _is_multiframe(arr: np.ndarray, photometric: str) -> bool:
    return arr.ndim == (3 if photometric.startswith("MONOCHROME") else 4)


def _encode_jpeg_baseline(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # Pillow writes colour JPEG as YCbCr; "4:2:2" matches the YBR_FULL_422 tag.
    Image.fromarray(frame).save(buf, format="JPEG", quality=95, subsampling="4:2:2")
    return buf.getvalue()


def _write(path: Path, ds: Dataset, tsyntax: UID, preamble: bool) -> None:
    if preamble:
        dcmwrite(path, ds, enforce_file_format=True)
        return
    if tsyntax.is_compressed:
        raise ValueError("a file without file meta cannot say which compression it uses")
    del ds.file_meta
    dcmwrite(path, ds, implicit_vr=tsyntax == ImplicitVRLittleEndian, little_endian=True)


# --- JPEG Lossless (ITU-T T.81 process 14, selection value 1) -------------------------

_CODE_BITS = 5  # every difference category 0..16 gets a 5-bit Huffman code


def encode_jpeg_lossless(frame: np.ndarray, bits_stored: int, predictor: int = 1) -> bytes:
    """Encode one monochrome frame as a JPEG Lossless SV1 stream (predictor 1, Pt 0).

    A deliberately simple Huffman table (17 codes of 5 bits) keeps the encoder short;
    any conformant decoder (libjpeg via pylibjpeg, GDCM) reads it.
    """
    if frame.ndim != 2 or predictor != 1 or not 2 <= bits_stored <= 16:
        raise ValueError("monochrome 2-D frames, predictor 1 and 2..16 bits only")
    rows, cols = frame.shape
    x = frame.astype(np.int64)
    pred = np.empty_like(x)
    pred[:, 1:] = x[:, :-1]  # Ra, the sample to the left
    pred[1:, 0] = x[:-1, 0]  # first column: Rb, the sample above
    pred[0, 0] = 1 << (bits_stored - 1)
    diff = (x - pred) % 65536
    diff = np.where(diff >= 32768, diff - 65536, diff).ravel()

    ssss = np.zeros(diff.shape, dtype=np.int64)
    nonzero = diff != 0
    ssss[nonzero] = np.floor(np.log2(np.abs(diff[nonzero]))).astype(np.int64) + 1
    ssss[diff == -32768] = 16  # category 16 carries no extra bits
    extra = np.where(diff < 0, diff - 1, diff) & ((1 << ssss) - 1)
    extra[ssss == 16] = 0
    extra_len = np.where(ssss == 16, 0, ssss)
    words = (ssss << extra_len) | extra  # Huffman code for category k is k itself
    lengths = _CODE_BITS + extra_len

    width = int(lengths.max())
    shifts = np.arange(width - 1, -1, -1)
    aligned = words << (width - lengths)  # left-align each code word in `width` bits
    bitmatrix = ((aligned[:, None] >> shifts) & 1).astype(np.uint8)
    keep = np.arange(width)[None, :] < lengths[:, None]
    bits = bitmatrix[keep]
    bits = np.concatenate([bits, np.ones((-bits.size) % 8, dtype=np.uint8)])  # pad 1s
    scan = np.packbits(bits).tobytes().replace(b"\xff", b"\xff\x00")  # byte stuffing

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload

    sof3 = bytes([bits_stored]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big")
    sof3 += bytes([1, 1, 0x11, 0])
    counts = [0] * 16
    counts[_CODE_BITS - 1] = 17
    dht = bytes([0x00, *counts, *range(17)])
    sos = bytes([1, 1, 0x00, predictor, 0, 0])
    return b"".join(
        [
            b"\xff\xd8",
            segment(0xC3, sof3),
            segment(0xC4, dht),
            segment(0xDA, sos),
            scan,
            b"\xff\xd9",
        ]
    )
