"""Image loading: real sample files, synthetic DICOM for what they lack, raster formats,
and every bad input, which must come out as one typed error naming file and cause."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing, get_decoder
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    RLELossless,
)

import xraydesk.imaging.dicom as dicom_reader
import xraydesk.imaging.loader as loader
from tests.dicom_factory import encode_jpeg_lossless, make_dicom
from tests.hostile_files import ERROR, OK, SKIP, write_hostile_folder
from tests.paths import REPO_ROOT
from xraydesk.imaging import (
    MAX_PIXELS,
    ImageLoadError,
    PatientInfo,
    Window,
    XRay,
    is_image_file,
    load_xray,
)
from xraydesk.imaging.limits import MAX_FILE_BYTES

SAMPLE_DICOMS = {
    "siim-cr-jpeg-baseline.dcm": (1024, 1024),
    "siim-cr-jpeg-baseline-tagged-monochrome1.dcm": (1024, 1024),
    "rsna-cr-jpeg-baseline.dcm": (1024, 1024),
    "nih-dx-uncompressed.dcm": (1024, 1024),
    "cr-monochrome1-10bit-no-preamble.dcm": (440, 440),
}
RNG = np.random.default_rng(20240102)


def gradient(rows: int = 32, cols: int = 40, bits: int = 12) -> np.ndarray:
    """A smooth ramp over the full range of ``bits``, 0 at top-left (compresses well)."""
    top = 2**bits - 1
    ramp = np.linspace(0, top, rows * cols).round().reshape(rows, cols)
    return ramp.astype(np.uint8 if bits <= 8 else np.uint16)


def rgb_image(rows: int = 32, cols: int = 40) -> np.ndarray:
    """Smooth colour, so lossy JPEG stays close to it."""
    y, x = np.mgrid[0:rows, 0:cols]
    red = x * 255 // (cols - 1)
    green = y * 255 // (rows - 1)
    blue = np.full_like(x, 60)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def luminance(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def save_pillow(path: Path, image: Image.Image, fmt: str, **options) -> Path:
    image.save(path, format=fmt, **options)
    return path


def assert_load_error(path: Path, *causes: str, **kwargs) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_xray(path, **kwargs)
    message = str(info.value)
    assert path.name in message
    for cause in causes:
        assert cause.lower() in message.lower(), message
    return info.value


# --- real sample files ------------------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(SAMPLE_DICOMS))
def test_sample_dicoms_load(samples_dir: Path, name: str) -> None:
    xray = load_xray(samples_dir / "dicom" / name)
    assert isinstance(xray, XRay)
    assert xray.shape == SAMPLE_DICOMS[name]
    assert xray.pixels.dtype == np.float32 and xray.pixels.flags.c_contiguous
    assert xray.metadata.format == "DICOM"
    assert xray.metadata.modality in {"CR", "DX"}
    assert xray.metadata.frames == 1 and xray.notes == ()
    assert isinstance(xray.patient, PatientInfo)
    low, high = xray.value_range
    assert 0 <= low < high < 2**xray.bits_stored
    rendered = xray.render()
    assert rendered.shape == xray.shape and 0.0 <= rendered.min() <= rendered.max() <= 1.0


@pytest.mark.data
def test_siim_monochrome1_twin_renders_inverted(samples_dir: Path) -> None:
    plain = load_xray(samples_dir / "dicom" / "siim-cr-jpeg-baseline.dcm")
    tagged = load_xray(samples_dir / "dicom" / "siim-cr-jpeg-baseline-tagged-monochrome1.dcm")
    assert plain.metadata.photometric_interpretation == "MONOCHROME2"
    assert tagged.metadata.photometric_interpretation == "MONOCHROME1"
    assert not plain.inverted and tagged.inverted
    np.testing.assert_array_equal(plain.pixels, tagged.pixels)  # raw values never inverted
    np.testing.assert_allclose(plain.render(), 1.0 - tagged.render(), atol=1e-6)
    assert plain.metadata.transfer_syntax == "JPEG Baseline (Process 1)"
    assert plain.metadata.pixel_spacing == pytest.approx((0.168, 0.168))


@pytest.mark.data
def test_nema_cr_without_preamble(samples_dir: Path) -> None:
    path = samples_dir / "dicom" / "cr-monochrome1-10bit-no-preamble.dcm"
    head = path.read_bytes()[:132]
    assert head[128:132] != b"DICM"  # the point of this sample
    assert is_image_file(path)
    xray = load_xray(path)
    assert xray.bits_stored == 10
    assert xray.inverted
    assert xray.metadata.transfer_syntax == "Implicit VR Little Endian"
    low, high = xray.value_range
    assert low >= 0 and high <= 1023
    assert xray.window == Window(center=550.0, width=1024.0)


@pytest.mark.data
def test_sample_dicom_loads_fast(samples_dir: Path) -> None:
    path = samples_dir / "dicom" / "siim-cr-jpeg-baseline.dcm"
    load_xray(path)  # warm imports and plugin discovery
    best = min(_timed(load_xray, path) for _ in range(3))
    assert best < 0.1, f"1024x1024 JPEG Baseline DICOM took {best * 1000:.0f} ms"


@pytest.mark.data
def test_pool_jpeg_loads_fast(shared_data: Path) -> None:
    path = next((shared_data / "kermany-pediatric" / "normal").glob("*.jpeg"))
    xray = load_xray(path)
    assert xray.shape == (224, 224) and xray.metadata.format == "JPEG"
    assert min(_timed(load_xray, path) for _ in range(3)) < 0.05


def _timed(func: Callable[[Path], object], path: Path) -> float:
    start = time.perf_counter()
    func(path)
    return time.perf_counter() - start


@pytest.mark.data
def test_fullres_pngs_load(samples_dir: Path) -> None:
    paths = sorted((samples_dir / "fullres").glob("*.png"))
    assert len(paths) == 5
    for path in paths:
        xray = load_xray(path)
        small = path.name in {"nih-00027426_000.png", "tbx11k-health-h0001.png"}
        assert xray.shape == ((512, 512) if small else (1024, 1024))
        assert xray.bits_stored == 8 and xray.window == Window.from_range(0, 255)
        assert xray.metadata.format == "PNG"


@pytest.mark.data
def test_tbx11k_rgb_png_becomes_grey(samples_dir: Path) -> None:
    path = samples_dir / "fullres" / "tbx11k-health-h0001.png"
    with Image.open(path) as img:
        assert img.mode == "RGB"
        stored = np.asarray(img)
    xray = load_xray(path)
    assert xray.pixels.ndim == 2 and xray.shape == (512, 512)
    np.testing.assert_allclose(xray.pixels, luminance(stored), atol=1.0)


# --- synthetic DICOM: pixel pipeline -----------------------------------------------------


def test_rescale_slope_intercept_applied(tmp_path: Path) -> None:
    stored = gradient(bits=12)
    path = make_dicom(tmp_path / "rescale.dcm", stored, bits_stored=12, rescale=(2.5, -1024))
    xray = load_xray(path)
    np.testing.assert_allclose(xray.pixels, stored * 2.5 - 1024)
    assert xray.value_range == (-1024.0, 4095 * 2.5 - 1024)
    assert xray.window == Window.from_range(-1024.0, 4095 * 2.5 - 1024)  # no window: full range
    assert xray.bits_stored == 12


def test_signed_pixels_with_intercept(tmp_path: Path) -> None:
    stored = (gradient(bits=12).astype(np.int16) - 2048).astype(np.int16)
    path = make_dicom(tmp_path / "signed.dcm", stored, bits_stored=12, rescale=(1, -1000))
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, stored.astype(np.float32) - 1000)


def test_modality_lut_sequence_applied(tmp_path: Path) -> None:
    stored = gradient(bits=8)
    table = (np.arange(256) ** 2 // 4).astype(np.uint16)
    path = make_dicom(tmp_path / "mlut.dcm", stored, modality_lut=(0, 16, table))
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, table[stored])


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_voi_lut_applied_before_monochrome1_inversion(tmp_path: Path, syntax: str) -> None:
    """A square-law VOI LUT on MONOCHROME1: the LUT maps stored values, the inversion
    comes last. Inverting first (torchxrayvision's order) gives another picture."""
    stored = np.array([[0, 1024, 2048], [3072, 4095, 512]], dtype=np.uint16)
    table = np.round((np.arange(4096) / 4095) ** 2 * 65535).astype(np.uint16)
    path = make_dicom(
        tmp_path / "voi.dcm",
        stored,
        photometric="MONOCHROME1",
        bits_stored=12,
        voi_lut=(0, 16, table),
        window=(100, 50),  # present but the VOI LUT takes precedence
        transfer_syntax=syntax,
    )
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, table[stored])  # LUT output, not inverted
    assert xray.window == Window.from_range(0, 65535)  # full output range of the table
    assert xray.inverted
    shown = xray.render()
    correct = 1.0 - (stored / 4095) ** 2
    wrong = ((4095 - stored) / 4095) ** 2
    np.testing.assert_allclose(shown, correct, atol=1e-4)
    assert abs(shown[0, 1] - 0.9375) < 1e-3 and abs(wrong[0, 1] - shown[0, 1]) > 0.3


def test_voi_lut_first_mapped_value_clamps(tmp_path: Path) -> None:
    stored = np.array([[0, 99, 100, 101], [102, 103, 200, 4095]], dtype=np.uint16)
    table = np.array([10, 20, 30, 40], dtype=np.uint16)
    path = make_dicom(tmp_path / "voi-offset.dcm", stored, bits_stored=12, voi_lut=(100, 16, table))
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, [[10, 10, 10, 20], [30, 40, 40, 40]])
    assert xray.window == Window.from_range(10, 40)


@pytest.mark.parametrize(
    ("window", "expected"),
    [((1500, 3000), Window(1500, 3000)), (([300, 1000], [600, 2000]), Window(300, 600))],
)
def test_window_center_width_first_value(
    tmp_path: Path, window: tuple[object, object], expected: Window
) -> None:
    stored = gradient(bits=12)
    xray = load_xray(make_dicom(tmp_path / "w.dcm", stored, bits_stored=12, window=window))
    assert xray.window == expected
    np.testing.assert_array_equal(xray.pixels, stored)  # values stay full depth


def test_monochrome1_inverts_after_windowing(tmp_path: Path) -> None:
    """Like torchxrayvision's fake MONOCHROME1 test, but with the DICOM order."""
    stored = gradient(bits=12)
    mono2 = load_xray(make_dicom(tmp_path / "m2.dcm", stored, bits_stored=12))
    mono1 = load_xray(
        make_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1", bits_stored=12)
    )
    np.testing.assert_array_equal(mono1.pixels, mono2.pixels)
    assert mono1.inverted and not mono2.inverted
    np.testing.assert_allclose(mono1.render(), 1.0 - mono2.render(), atol=1e-6)
    assert mono1.render()[0, 0] == 1.0  # lowest stored value is white in MONOCHROME1

    value = np.full((4, 4), 600, dtype=np.uint16)
    windowed = load_xray(
        make_dicom(
            tmp_path / "m1w.dcm",
            value,
            photometric="MONOCHROME1",
            bits_stored=12,
            window=(1000, 1000),
        )
    )
    # window 500..1500 maps 600 to 0.1, then inversion: 0.9. Inverting the raw value
    # first (4095 - 600 = 3495, above the window) would give 1.0.
    np.testing.assert_allclose(windowed.render(), 0.9, atol=1e-6)
    np.testing.assert_allclose(windowed.render(invert=True), 0.1, atol=1e-6)


@pytest.mark.parametrize(
    ("photometric", "shape", "inverted"),
    [
        ("MONOCHROME2", None, False),
        ("MONOCHROME2", "IDENTITY", False),
        ("MONOCHROME2", "INVERSE", True),
        ("MONOCHROME1", None, True),
        # PS3.3 C.8.11.6.1.2: INVERSE is *required* with MONOCHROME1 in DX images and
        # describes the same inversion, so it is applied once, not toggled back.
        ("MONOCHROME1", "INVERSE", True),
    ],
)
def test_presentation_lut_shape(
    tmp_path: Path, photometric: str, shape: str | None, inverted: bool
) -> None:
    path = make_dicom(
        tmp_path / "plut.dcm",
        gradient(bits=8),
        photometric=photometric,
        presentation_lut_shape=shape,
    )
    assert load_xray(path).inverted is inverted


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless, JPEGLosslessSV1])
def test_multiframe_shows_frame_one(tmp_path: Path, syntax: str) -> None:
    frames = np.stack([gradient(bits=11) + 10 * i for i in range(3)]).astype(np.uint16)
    path = make_dicom(tmp_path / "mf.dcm", frames, bits_stored=12, transfer_syntax=syntax)
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, frames[0])
    assert xray.metadata.frames == 3
    assert xray.notes == ("multi-frame DICOM with 3 frames: showing frame 1",)


@pytest.mark.parametrize(
    ("photometric", "syntax", "tolerance"),
    [
        ("RGB", ExplicitVRLittleEndian, 1e-3),
        ("RGB", RLELossless, 1e-3),
        ("YBR_FULL", ExplicitVRLittleEndian, 1.5),  # rounding in the YBR conversion
        ("YBR_FULL_422", JPEGBaseline8Bit, 8.0),  # lossy and chroma-subsampled
    ],
)
def test_colour_dicom_becomes_grey(
    tmp_path: Path, photometric: str, syntax: str, tolerance: float
) -> None:
    rgb = rgb_image()
    path = make_dicom(tmp_path / "colour.dcm", rgb, photometric=photometric, transfer_syntax=syntax)
    xray = load_xray(path)
    assert xray.pixels.ndim == 2 and xray.shape == rgb.shape[:2]
    assert not xray.inverted and xray.window == Window.from_range(0, 255)
    np.testing.assert_allclose(xray.pixels, luminance(rgb), atol=tolerance)


def test_palette_colour_dicom_becomes_grey(tmp_path: Path) -> None:
    index = gradient(16, 16, bits=8)
    ramp = (np.arange(256) * 257).astype("<u2").tobytes()  # a grey palette, 16-bit entries
    extra: dict[str, object] = {}
    for colour in ("Red", "Green", "Blue"):
        extra[f"{colour}PaletteColorLookupTableDescriptor"] = [256, 0, 16]
        extra[f"{colour}PaletteColorLookupTableData"] = ramp
    path = make_dicom(tmp_path / "pal.dcm", index, photometric="PALETTE COLOR", extra=extra)
    xray = load_xray(path)
    np.testing.assert_allclose(xray.pixels, index * 257.0, atol=0.01)
    assert xray.bits_stored == 16


@pytest.mark.parametrize(
    "syntax",
    [
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        RLELossless,
        JPEG2000Lossless,
        JPEGLosslessSV1,
        JPEGLossless,
    ],
)
@pytest.mark.parametrize("bits", [8, 12, 16])
def test_lossless_transfer_syntaxes_round_trip(tmp_path: Path, syntax: str, bits: int) -> None:
    stored = gradient(bits=bits)
    stored[5, 7] = 0  # sharp edges exercise large prediction differences
    stored[5, 8] = 2**bits - 1
    path = make_dicom(tmp_path / "ts.dcm", stored, bits_stored=bits, transfer_syntax=syntax)
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, stored)
    assert xray.bits_stored == bits
    assert xray.metadata.transfer_syntax == get_decoder(syntax).UID.name


def test_jpeg_baseline_synthetic(tmp_path: Path) -> None:
    stored = gradient(bits=8)
    path = make_dicom(tmp_path / "jpeg.dcm", stored, transfer_syntax=JPEGBaseline8Bit)
    xray = load_xray(path)
    np.testing.assert_allclose(xray.pixels, stored, atol=4)


def test_jpeg_lossless_encoder_writes_process_14() -> None:
    stream = encode_jpeg_lossless(gradient(bits=12), 12)
    assert stream.startswith(b"\xff\xd8\xff\xc3") and stream.endswith(b"\xff\xd9")


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_dicom_without_preamble_or_meta(tmp_path: Path, syntax: str) -> None:
    stored = gradient(bits=12)
    path = make_dicom(
        tmp_path / "raw", stored, bits_stored=12, preamble=False, transfer_syntax=syntax
    )
    head = path.read_bytes()[:132]
    assert head[:2] == b"\x08\x00" and head[128:132] != b"DICM"
    assert is_image_file(path)
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, stored)
    assert xray.metadata.transfer_syntax == get_decoder(syntax).UID.name


def test_metadata_and_patient(tmp_path: Path) -> None:
    path = make_dicom(
        tmp_path / "meta.dcm", gradient(bits=8), modality="CR", extra={"PixelSpacing": [0.2, 0.3]}
    )
    xray = load_xray(path)
    meta = xray.metadata
    assert (meta.path, meta.format, meta.modality) == (path, "DICOM", "CR")
    assert (meta.view_position, meta.body_part) == ("PA", "CHEST")
    assert meta.photometric_interpretation == "MONOCHROME2"
    assert meta.pixel_spacing == (0.2, 0.3)  # PixelSpacing wins over ImagerPixelSpacing
    assert meta.study_date == "20240102"
    assert meta.transfer_syntax == "Explicit VR Little Endian" and meta.frames == 1
    patient = xray.patient
    assert (patient.name, patient.patient_id, patient.birth_date) == (
        "Doe^Jane",
        "P-0001",
        "19700101",
    )
    assert isinstance(patient.name, str)
    assert "Doe" not in repr(xray)

    anonymous = load_xray(make_dicom(tmp_path / "anon.dcm", gradient(bits=8), with_patient=False))
    assert anonymous.patient == PatientInfo()
    assert anonymous.metadata.pixel_spacing == (0.143, 0.143)  # ImagerPixelSpacing


def test_sigmoid_voi_function_hand_checked(tmp_path: Path) -> None:
    """PS3.3 C.11.2.1.3.1: y = 4095 / (1 + exp(-4 (x - 2048) / 4096)) for 12-bit data;
    the expected values were worked out by hand (exp(2) = 7.389, exp(1) = 2.718)."""
    stored = np.array([[0, 2048], [3072, 4095]], dtype=np.uint16)
    path = make_dicom(
        tmp_path / "sig.dcm",
        stored,
        bits_stored=12,
        window=(2048, 4096),
        extra={"VOILUTFunction": "SIGMOID"},
    )
    xray = load_xray(path)
    np.testing.assert_allclose(xray.pixels, [[488.136, 2047.5], [2993.685, 3606.444]], rtol=1e-5)
    assert xray.window == Window.from_range(0, 4095)  # the sigmoid's output range
    assert xray.notes == ()
    np.testing.assert_allclose(xray.render()[0, 1], 0.5, atol=1e-6)


def test_sigmoid_comes_after_rescale_and_before_monochrome1_inversion(tmp_path: Path) -> None:
    """Rescale first (2x - 1000), then the sigmoid on modality values, inversion last."""
    stored = np.array([[0, 2048], [3072, 4095]], dtype=np.uint16)
    path = make_dicom(
        tmp_path / "sig-m1.dcm",
        stored,
        photometric="MONOCHROME1",
        bits_stored=12,
        rescale=(2, -1000),
        window=(3096, 8192),  # the window of the modality values 2 * 2048 - 1000
        extra={"VOILUTFunction": "SIGMOID"},
    )
    xray = load_xray(path)
    # output range: 0 * 2 - 1000 = -1000 to 4095 * 2 - 1000 = 7190; at the center 3095
    assert xray.window == Window.from_range(-1000, 7190)
    assert xray.pixels[0, 1] == pytest.approx(3095.0, abs=1e-3)
    # x = 3072: modality 5144, exp(-4 * 2048 / 8192) = exp(-1): 8190 / 1.36788 - 1000
    assert xray.pixels[1, 0] == pytest.approx(4987.37, abs=0.01)
    assert xray.inverted
    np.testing.assert_allclose(xray.render()[0, 1], 0.5, atol=1e-6)  # inverted: still 0.5
    np.testing.assert_allclose(xray.render()[1, 0], 1.0 - 5987.37 / 8190, atol=1e-5)


def test_linear_exact_window_is_recorded(tmp_path: Path) -> None:
    stored = gradient(bits=12)
    path = make_dicom(
        tmp_path / "exact.dcm",
        stored,
        bits_stored=12,
        window=(1000, 0.5),  # LINEAR_EXACT allows widths below 1 (a threshold)
        extra={"VOILUTFunction": "LINEAR_EXACT"},
    )
    xray = load_xray(path)
    assert xray.window == Window(1000, 0.5) and xray.notes == ()
    np.testing.assert_array_equal(xray.pixels, stored)
    np.testing.assert_array_equal(xray.render(), (stored > 1000).astype(np.float32))


def _reference_render(path: Path) -> np.ndarray:
    """pydicom's own display pipeline, scaled to [0, 1]: modality LUT, then VOI LUT or
    windowing (with its VOI LUT Function), then MONOCHROME1 inversion."""
    ds = dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:  # the NEMA sample has no file meta
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    modality = apply_modality_lut(ds.pixel_array, ds)
    if ds.get("VOILUTSequence"):
        item = ds.VOILUTSequence[0]
        entries, first = int(item.LUTDescriptor[0]) or 65536, int(item.LUTDescriptor[1])
        table = apply_voi(np.arange(first, first + entries), ds).astype(np.float64)
        low, high = table.min(), table.max()
        out = apply_voi(np.rint(modality).astype(np.int64), ds).astype(np.float64)
    elif ds.get("VOILUTFunction", "LINEAR") == "SIGMOID":
        out = apply_windowing(modality, ds)
        low, high = apply_windowing(np.array([-np.inf, np.inf]), ds)
    elif "WindowCenter" in ds:
        center, width = float(ds.WindowCenter), float(ds.WindowWidth)  # LINEAR_EXACT
        low, high, out = center - width / 2, center + width / 2, modality
    else:
        low, high, out = modality.min(), modality.max(), modality
    shown = np.clip((out - low) / (high - low), 0, 1)
    return 1.0 - shown if ds.PhotometricInterpretation == "MONOCHROME1" else shown


VOI_CASES = {
    "file": {},
    "linear": {"WindowCenter": "90", "WindowWidth": "120", "VOILUTFunction": "LINEAR"},
    "linear-exact": {"WindowCenter": "90", "WindowWidth": "120", "VOILUTFunction": "LINEAR_EXACT"},
    "sigmoid": {"WindowCenter": "100", "WindowWidth": "80", "VOILUTFunction": "SIGMOID"},
    "lut": {"VOILUTSequence": (0, 16, np.round((np.arange(1024) / 1023) ** 0.5 * 65535))},
}


def _with_voi(source: Path, target: Path, case: str) -> Path:
    """``source`` re-written to ``target`` with the VOI attributes of ``case``."""
    ds = dcmread(source, force=True)
    for keyword in ("WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence"):
        if keyword in ds and case != "file":
            del ds[keyword]
    for keyword, value in VOI_CASES[case].items():
        if keyword == "VOILUTSequence":
            first, bits, table = value
            item = Dataset()
            item.add_new(0x00283002, "US", [len(table), first, bits])
            item.add_new(0x00283006, "US", [int(v) for v in table])
            ds.VOILUTSequence = [item]
        else:
            setattr(ds, keyword, value)
    ds.save_as(target)
    return target


def _synthetic_sources(tmp: Path) -> dict[str, Path]:
    stored = gradient(64, 64, bits=10)
    return {
        "synthetic-mono2-rescaled": make_dicom(
            tmp / "s2.dcm", stored, bits_stored=10, rescale=(0.5, 10)
        ),
        "synthetic-mono1": make_dicom(
            tmp / "s1.dcm", stored, photometric="MONOCHROME1", bits_stored=10
        ),
    }


@pytest.mark.data
@pytest.mark.parametrize("case", sorted(VOI_CASES))
@pytest.mark.parametrize("name", sorted(SAMPLE_DICOMS))
def test_samples_render_as_pydicom_displays_them(
    samples_dir: Path, tmp_path: Path, name: str, case: str
) -> None:
    """Each real sample (read in place; the variant is written to tmp_path) with each
    VOI kind renders as pydicom's pipeline says. LINEAR differs from LINEAR_EXACT by
    half a unit of the window, hence the tolerance."""
    path = _with_voi(samples_dir / "dicom" / name, tmp_path / name, case)
    xray = load_xray(path)
    np.testing.assert_allclose(xray.render(), _reference_render(path), atol=2 / 120)


@pytest.mark.parametrize("case", sorted(VOI_CASES))
@pytest.mark.parametrize("source", ["synthetic-mono2-rescaled", "synthetic-mono1"])
def test_synthetic_render_as_pydicom_displays_them(tmp_path: Path, source: str, case: str) -> None:
    path = _with_voi(_synthetic_sources(tmp_path)[source], tmp_path / "voi.dcm", case)
    xray = load_xray(path)
    np.testing.assert_allclose(xray.render(), _reference_render(path), atol=2 / 120)


# --- hostile headers (issue 18) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("slope", "intercept"), [("NaN", "0"), ("1e309", "0"), ("1", "-inf"), ("1e38", "1e38")]
)
def test_non_finite_rescale_is_refused(tmp_path: Path, slope: str, intercept: str) -> None:
    """Issue 18 #1: NaN pixels used to load and be classified as "normal"."""
    path = make_dicom(
        tmp_path / "rescale.dcm",
        gradient(bits=12),
        bits_stored=12,
        extra={"RescaleSlope": slope, "RescaleIntercept": intercept},
    )
    assert_load_error(path, "damaged DICOM header", "Rescale Slope", "not finite numbers")


@pytest.mark.parametrize(
    ("center", "width", "why"),
    [
        ("NaN", "400", "unusable"),
        ("2048", "inf", "unusable"),
        ("2048", "NaN", "unusable"),
        ("2048", "0", "unusable"),
        ("2048", "-10", "unusable"),
        ("1e39", "100", "unusable"),
        ("1e6", "100", "outside the pixel values"),
    ],
)
def test_unusable_window_falls_back_to_the_full_range_with_a_note(
    tmp_path: Path, center: str, width: str, why: str
) -> None:
    stored = gradient(bits=12)
    for function in ("LINEAR", "SIGMOID"):
        path = make_dicom(
            tmp_path / "w.dcm",
            stored,
            bits_stored=12,
            extra={"WindowCenter": center, "WindowWidth": width, "VOILUTFunction": function},
        )
        xray = load_xray(path)
        assert xray.window == Window.from_range(0, 4095)
        np.testing.assert_array_equal(xray.pixels, stored)
        assert len(xray.notes) == 1 and why in xray.notes[0], xray.notes
        assert "the file's window" in xray.notes[0]


def test_empty_voi_lut_is_ignored_with_a_note(tmp_path: Path) -> None:
    stored = gradient(bits=12)
    path = make_dicom(tmp_path / "voi.dcm", stored, bits_stored=12, voi_lut=(0, 16, [0, 1, 2]))
    ds = dcmread(path)
    ds.VOILUTSequence[0].LUTData = b""
    ds.save_as(path)
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, stored)
    assert xray.window == Window.from_range(0, 4095)
    assert xray.notes == ("the VOI LUT table is empty: ignored",)


def test_voi_lut_shorter_than_its_descriptor_is_ignored_with_a_note(tmp_path: Path) -> None:
    stored = gradient(bits=12)
    path = make_dicom(tmp_path / "voi.dcm", stored, bits_stored=12, voi_lut=(0, 16, [0, 1, 2]))
    ds = dcmread(path)
    ds.VOILUTSequence[0].LUTDescriptor = [4096, 0, 16]
    ds.save_as(path)
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, stored)
    assert len(xray.notes) == 1 and "VOI LUT table cannot be used" in xray.notes[0]


def test_rows_halved_is_refused(tmp_path: Path) -> None:
    """Issue 18 #11: it loaded silently as the top half."""
    path = make_dicom(tmp_path / "half.dcm", gradient(64, 64, 12), bits_stored=12,
                      extra={"Rows": 32})  # fmt: skip
    assert_load_error(path, "32 x 64 x 1 frame(s)", "needs 4,096 bytes", "holds 8,192", "Rows")


@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, RLELossless, JPEGLosslessSV1, JPEGBaseline8Bit]
)
def test_a_million_frames_on_a_single_frame_file_is_refused(tmp_path: Path, syntax: str) -> None:
    """Issue 18 #11: compressed files claiming 1e6 frames showed frame 1 with a note."""
    path = make_dicom(tmp_path / "frames.dcm", gradient(bits=8), transfer_syntax=syntax,
                      extra={"NumberOfFrames": "1000000"})  # fmt: skip
    assert_load_error(path, "damaged DICOM", "1,000,000")


def test_odd_pixel_data_padding_is_accepted(tmp_path: Path) -> None:
    stored = gradient(9, 9, bits=8)  # 81 bytes, written padded to 82
    np.testing.assert_array_equal(load_xray(make_dicom(tmp_path / "o.dcm", stored)).pixels, stored)


def _run_with_deadline(path: Path, seconds: float) -> BaseException | None:
    """load_xray in a daemon thread: a hang fails the test instead of blocking it."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            load_xray(path)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"load_xray({path}) still running after {seconds} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_fifo_is_refused_at_once(tmp_path: Path) -> None:
    """Issue 18 #3: opening a FIFO blocks until a writer comes."""
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    error = _run_with_deadline(fifo, 2.0)
    assert isinstance(error, ImageLoadError) and "named pipe" in str(error)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_device_is_refused_at_once() -> None:
    error = _run_with_deadline(Path("/dev/zero"), 2.0)
    assert isinstance(error, ImageLoadError) and "a device" in str(error)


def test_huge_sparse_file_is_refused_before_reading(tmp_path: Path) -> None:
    """An 8 GB sparse file with a PNG header: refused on its size, nothing read."""
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.write(_image_bytes("PNG"))
        handle.truncate(8 * 1024**3)
    started = time.perf_counter()
    error = _run_with_deadline(path, 2.0)
    assert isinstance(error, ImageLoadError) and "file too large" in str(error)
    assert MAX_FILE_BYTES < 8 * 1024**3
    assert time.perf_counter() - started < 1.0


def test_hostile_folder_outcomes(tmp_path: Path) -> None:
    """Every file of the shared hostile folder does what tests.hostile_files says."""
    hostile = write_hostile_folder(tmp_path)
    for name, case in hostile.items():
        path = tmp_path / name
        if case.expect == SKIP:
            assert not is_image_file(path), name
            continue
        try:
            xray = load_xray(path)
        except ImageLoadError as exc:
            assert case.expect == ERROR, f"{name!r} ({case.why}): {exc}"
            assert exc.path == path
            continue
        assert case.expect == OK, f"{name!r} ({case.why}) loaded"
        assert np.isfinite(xray.pixels).all()
        assert np.isfinite([xray.window.center, xray.window.width]).all()
        assert xray.window.width > 0


# --- raster formats ----------------------------------------------------------------------


def test_png_8bit_grey(tmp_path: Path) -> None:
    grey = gradient(bits=8)
    xray = load_xray(save_pillow(tmp_path / "g8.png", Image.fromarray(grey), "PNG"))
    np.testing.assert_array_equal(xray.pixels, grey)
    assert xray.pixels.dtype == np.float32
    assert xray.bits_stored == 8 and xray.window == Window.from_range(0, 255)
    assert xray.metadata.format == "PNG" and not xray.inverted


def test_png_16bit_keeps_full_depth(tmp_path: Path) -> None:
    deep = gradient(bits=16)
    deep[0, 1:5] = [1, 257, 4097, 65535]  # not multiples of 256: lost if cut to 8 bits
    xray = load_xray(save_pillow(tmp_path / "g16.png", Image.fromarray(deep), "PNG"))
    np.testing.assert_array_equal(xray.pixels, deep)
    assert xray.bits_stored == 16
    assert xray.value_range == (0.0, 65535.0)
    assert xray.window == Window.from_range(0, 65535)


def test_png_16bit_holding_12bit_data_windows_over_12_bits(tmp_path: Path) -> None:
    deep = gradient(bits=12)
    xray = load_xray(save_pillow(tmp_path / "g12.png", Image.fromarray(deep), "PNG"))
    np.testing.assert_array_equal(xray.pixels, deep)
    assert xray.bits_stored == 16
    assert xray.window == Window.from_range(0, 4095)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "LA"])
def test_png_colour_modes_become_grey(tmp_path: Path, mode: str) -> None:
    rgb = rgb_image()
    alpha = RNG.integers(0, 256, rgb.shape[:2], dtype=np.uint8)  # must not matter
    if mode == "RGB":
        image = Image.fromarray(rgb)
        expected = luminance(rgb)
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([rgb, alpha]))
        expected = luminance(rgb)
    elif mode == "P":
        image = Image.fromarray(rgb).quantize(colors=256)
        expected = luminance(np.asarray(image.convert("RGB")))
    else:
        grey = gradient(bits=8)
        image = Image.fromarray(np.dstack([grey, alpha]))
        expected = grey
    assert image.mode == mode
    xray = load_xray(save_pillow(tmp_path / f"{mode}.png", image, "PNG"))
    assert xray.pixels.ndim == 2 and xray.bits_stored == 8
    np.testing.assert_allclose(xray.pixels, expected, atol=1.0)


@pytest.mark.parametrize(("colour", "tolerance"), [(False, 3.0), (True, 8.0)])
def test_jpeg(tmp_path: Path, colour: bool, tolerance: float) -> None:
    data = rgb_image() if colour else gradient(bits=8)
    path = save_pillow(tmp_path / "x.jpg", Image.fromarray(data), "JPEG", quality=95)
    xray = load_xray(path)
    expected = luminance(data) if colour else data
    np.testing.assert_allclose(xray.pixels, expected, atol=tolerance)
    assert xray.metadata.format == "JPEG" and xray.window == Window.from_range(0, 255)


def test_jpeg_exif_orientation_applied(tmp_path: Path) -> None:
    stored = np.zeros((10, 20), dtype=np.uint8)
    stored[:4, :4] = 255  # a bright block top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = save_pillow(tmp_path / "rot.jpg", Image.fromarray(stored), "JPEG", exif=exif)
    xray = load_xray(path)
    assert xray.shape == (20, 10)
    assert xray.pixels[:3, -3:].min() > 200  # the block is now top-right
    assert xray.pixels[-3:, :3].max() < 50


@pytest.mark.parametrize("bits", [8, 16])
def test_tiff(tmp_path: Path, bits: int) -> None:
    grey = gradient(bits=bits)
    xray = load_xray(save_pillow(tmp_path / "x.tif", Image.fromarray(grey), "TIFF"))
    np.testing.assert_array_equal(xray.pixels, grey)
    assert xray.bits_stored == bits and xray.metadata.format == "TIFF"


def test_multipage_tiff_shows_page_one(tmp_path: Path) -> None:
    pages = [Image.fromarray(gradient(bits=8) // (i + 1)) for i in range(3)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, format="TIFF", save_all=True, append_images=pages[1:])
    xray = load_xray(path)
    np.testing.assert_array_equal(xray.pixels, gradient(bits=8))
    assert xray.metadata.frames == 3 and "frame 1" in xray.notes[0]


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_bmp(tmp_path: Path, mode: str) -> None:
    data = gradient(bits=8) if mode == "L" else rgb_image()
    xray = load_xray(save_pillow(tmp_path / "x.bmp", Image.fromarray(data), "BMP"))
    expected = data if mode == "L" else luminance(data)
    np.testing.assert_allclose(xray.pixels, expected, atol=1.0)
    assert xray.metadata.format == "BMP"


def test_format_comes_from_content_not_extension(tmp_path: Path) -> None:
    png = save_pillow(tmp_path / "really-a-png.jpg", Image.fromarray(gradient(bits=8)), "PNG")
    assert load_xray(png).metadata.format == "PNG"
    dcm = make_dicom(tmp_path / "really-a-dicom.png", gradient(bits=8))
    assert load_xray(dcm).metadata.format == "DICOM"
    bare = save_pillow(tmp_path / "no-extension", Image.fromarray(gradient(bits=8)), "JPEG")
    assert load_xray(bare).metadata.format == "JPEG"


# --- bad input ---------------------------------------------------------------------------


def _truncated(source: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    target = source.with_name("cut-" + source.name)
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def _noise(rows: int = 64, cols: int = 64) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (rows, cols), dtype=np.uint8))


def _missing_file(tmp: Path) -> Path:
    return tmp / "nowhere.png"


def _directory(tmp: Path) -> Path:
    folder = tmp / "folder.png"
    folder.mkdir()
    return folder


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.png"
    path.touch()
    return path


def _text_named_png(tmp: Path) -> Path:
    path = tmp / "notes.png"
    path.write_text("these are not the pixels you are looking for\n")
    return path


def _garbage_after_png_signature(tmp: Path) -> Path:
    path = tmp / "garbled.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(RNG.integers(0, 256, 500, dtype=np.uint8)))
    return path


def _truncated_png(tmp: Path) -> Path:
    return _truncated(save_pillow(tmp / "scan.png", _noise(), "PNG"))


def _truncated_jpeg(tmp: Path) -> Path:
    return _truncated(save_pillow(tmp / "scan.jpg", _noise(), "JPEG"))


def _truncated_dicom(tmp: Path) -> Path:
    return _truncated(make_dicom(tmp / "scan.dcm", gradient(64, 64, bits=12), bits_stored=12), 0.8)


def _corrupt_compressed_dicom(tmp: Path) -> Path:
    garbage = encapsulate([b"\xff\xd8\xff\xc3\x00\x0bnot a JPEG stream"])
    return make_dicom(
        tmp / "corrupt.dcm",
        gradient(bits=12),
        bits_stored=12,
        transfer_syntax=JPEGLosslessSV1,
        extra={"PixelData": garbage},
    )


def _dicom_without_pixels(tmp: Path) -> Path:
    return make_dicom(tmp / "report.dcm", None)


def _ct_volume(tmp: Path) -> Path:
    frames = np.stack([gradient(bits=12)] * 4)
    return make_dicom(tmp / "ct.dcm", frames, bits_stored=12, modality="CT")


def _two_samples_per_pixel(tmp: Path) -> Path:
    return make_dicom(tmp / "two.dcm", gradient(bits=8), extra={"SamplesPerPixel": 2})


def _tomosynthesis(tmp: Path) -> Path:
    path = make_dicom(
        tmp / "tomo.dcm",
        np.stack([gradient(bits=8)] * 2),
        modality="MG",
        extra={"SOPClassUID": "1.2.840.10008.5.1.4.1.1.13.1.3"},
    )
    return path


def _one_pixel_png(tmp: Path) -> Path:
    return save_pillow(tmp / "dot.png", Image.new("L", (1, 1)), "PNG")


def _one_row_dicom(tmp: Path) -> Path:
    return make_dicom(tmp / "row.dcm", np.zeros((1, 50), dtype=np.uint8))


BAD_INPUTS: list[tuple[Callable[[Path], Path], tuple[str, ...]]] = [
    (_missing_file, ("file not found",)),
    (_directory, ("is a folder",)),
    (_empty, ("empty file",)),
    (_text_named_png, ("not an image: unrecognised content",)),
    (_garbage_after_png_signature, ("PNG",)),
    (_truncated_png, ("truncated", "PNG")),
    (_truncated_jpeg, ("truncated", "JPEG")),
    (_truncated_dicom, ("truncated", "DICOM")),
    (_corrupt_compressed_dicom, ("damaged", "JPEG Lossless", "decoder failed")),
    (_dicom_without_pixels, ("DICOM file has no pixel data", "structured report")),
    (_ct_volume, ("a volume, not a 2-D radiograph", "CT")),
    (_tomosynthesis, ("a volume, not a 2-D radiograph",)),
    (_two_samples_per_pixel, ("2 samples per pixel",)),
    (_one_pixel_png, ("degenerate", "1 x 1")),
    (_one_row_dicom, ("degenerate", "1 x 50")),
]


@pytest.mark.parametrize(
    ("build", "causes"), BAD_INPUTS, ids=[build.__name__.strip("_") for build, _ in BAD_INPUTS]
)
def test_bad_input_raises_one_typed_error(
    tmp_path: Path, build: Callable[[Path], Path], causes: tuple[str, ...]
) -> None:
    path = build(tmp_path)
    error = assert_load_error(path, *causes)
    assert error.path == path and error.cause in str(error)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_pillow(tmp_path / "locked.png", Image.fromarray(gradient(bits=8)), "PNG")
    path.chmod(0)
    if os.access(path, os.R_OK):  # running as root: permissions do not stop reads

        def denied(*_args: object, **_kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(loader, "open", denied, raising=False)
    try:
        assert_load_error(path, "permission denied")
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize("maker", ["png", "dicom"])
def test_pixel_cap_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, maker: str
) -> None:
    if maker == "png":
        path = save_pillow(tmp_path / "big.png", Image.fromarray(gradient(40, 50, 8)), "PNG")
        monkeypatch.setattr(Image.Image, "load", _must_not_decode)
    else:
        path = make_dicom(tmp_path / "big.dcm", gradient(40, 50, 8))
        monkeypatch.setattr(dicom_reader, "_decode_first_frame", _must_not_decode)
    assert_load_error(path, "too large", "40 x 50", "2,000", "1,999", max_pixels=1999)
    assert MAX_PIXELS >= 25_000_000  # the default admits any real radiograph


def _must_not_decode(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("decoded before the size check")


def test_pixel_cap_counts_one_frame(tmp_path: Path) -> None:
    frames = np.stack([gradient(20, 20, 8)] * 4)
    path = make_dicom(tmp_path / "cine.dcm", frames, modality="US")
    assert load_xray(path, max_pixels=400).shape == (20, 20)  # only frame 1 is decoded


# pydicom 3's public plugin API (Decoder.available_plugins, remove_plugin) makes every
# decoder plugin of a syntax look uninstalled. Putting them back needs each plugin's
# private function path, so it runs in a child interpreter and nothing is restored.
_WITHOUT_DECODERS = """
import sys
from pydicom.pixels import get_decoder
import xraydesk.imaging.dicom as dicom_reader
from xraydesk.imaging import ImageLoadError, load_xray
path, syntax, skip_check = sys.argv[1], sys.argv[2], sys.argv[3] == "skip-check"
decoder = get_decoder(syntax)
for label in decoder.available_plugins:
    decoder.remove_plugin(label)
assert not decoder.is_available
if skip_check:  # reach pydicom's own failure, as if the up-front check had passed
    dicom_reader._check_decoder = lambda *_: None
try:
    load_xray(path)
except ImageLoadError as exc:
    print(exc)
"""


def _load_without_decoders(path: Path, syntax: str, mode: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DECODERS, str(path), syntax, mode],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert str(path) in done.stdout
    return done.stdout


def test_missing_decoder_names_the_package(tmp_path: Path) -> None:
    path = make_dicom(tmp_path / "j2k.dcm", gradient(bits=12), transfer_syntax=JPEG2000Lossless)
    for mode in ("", "skip-check"):  # the up-front check, and pydicom's failure translated
        out = _load_without_decoders(path, JPEG2000Lossless, mode)
        assert "JPEG 2000 DICOM needs a decoder" in out and "pylibjpeg-openjpeg" in out


def test_missing_jpeg_lossless_decoder(tmp_path: Path) -> None:
    path = make_dicom(tmp_path / "jll.dcm", gradient(bits=12), bits_stored=12,
                      transfer_syntax=JPEGLosslessSV1)  # fmt: skip
    out = _load_without_decoders(path, JPEGLosslessSV1)
    assert "JPEG Lossless DICOM needs a decoder" in out and "pylibjpeg-libjpeg" in out


def test_unexpected_failure_is_still_an_image_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_pillow(tmp_path / "ok.png", Image.fromarray(gradient(bits=8)), "PNG")

    def broken(*_args: object) -> None:
        raise RuntimeError("reader exploded")

    monkeypatch.setattr(loader, "read_raster", broken)
    assert_load_error(path, "could not read this PNG file", "reader exploded")


def test_non_path_argument_is_an_image_load_error() -> None:
    with pytest.raises(ImageLoadError, match="not a file path"):
        load_xray(12345)  # type: ignore[arg-type]


# --- is_image_file -----------------------------------------------------------------------


def _image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gradient(8, 8, 8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "BMP"])
def test_is_image_file_rasters(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "image.bin"  # extension deliberately meaningless
    path.write_bytes(_image_bytes(fmt))
    assert is_image_file(path) and is_image_file(str(path))


def test_is_image_file_dicom(tmp_path: Path) -> None:
    assert is_image_file(make_dicom(tmp_path / "IM0001", gradient(bits=8)))
    assert is_image_file(make_dicom(tmp_path / "RAW0001", gradient(bits=8), preamble=False))
    assert is_image_file(make_dicom(tmp_path / "report", None))  # loads to a clear error


def test_is_image_file_rejects(tmp_path: Path) -> None:
    hidden = tmp_path / ".hidden.png"
    hidden.write_bytes(_image_bytes("PNG"))
    apple_double = tmp_path / "._scan.png"
    apple_double.write_bytes(_image_bytes("PNG"))
    text = tmp_path / "readme.png"
    text.write_text("BM but not a bitmap, just text that starts with BM")
    fake_dicom = tmp_path / "fake.dcm"
    fake_dicom.write_bytes(b"\x08\x00\x05\x00" + b"\xff" * 200)  # odd, huge implicit length
    empty = tmp_path / "empty.jpg"
    empty.touch()
    folder = tmp_path / "folder.dcm"
    folder.mkdir()
    for path in (hidden, apple_double, text, fake_dicom, empty, folder, tmp_path / "gone.png"):
        assert not is_image_file(path), path.name
    assert not is_image_file(12345)  # type: ignore[arg-type]  # never raises
