"""``xraydesk self-test``: prove that this copy of XRayDesk works, end to end, headless.

A PyInstaller bundle that silently lost a DICOM decoder plugin, a model file or a Qt
platform plugin still starts; only using each part shows it. So this command loads every
bundled model, classifies a JPEG Baseline DICOM, an uncompressed DICOM and a PNG that it
writes at run time (no patient image ships with the app), computes a heat map, checks
that every DICOM decoder plugin is present and decodes what it should, and opens and
closes the main window. ``packaging/build.py`` runs it on every build; a user or an IT
department can run it on an installed copy.

It prints a short summary on stdout (``--json``: the whole report as JSON, for the build
and scripts) and exits 0, or 1 with the failed steps and their reasons (also on
stderr). Qt is imported only inside ``xraydesk.gui`` (through the app's own
``--screenshot`` mode), never here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk import __version__, paths
from xraydesk.environment import from_environ
from xraydesk.errors import ModelError
from xraydesk.model.card import ModelCard
from xraydesk.model.device import DEVICE_CHOICES

EXIT_OK, EXIT_FAILED = 0, 1
IMAGE_SHAPE = (320, 256)  # rows, columns: small, not square, so a transposition shows
JPEG_TOLERANCE = 4.0  # mean absolute error (of 255) allowed for a quality-95 JPEG

# Every transfer syntax XRayDesk reads, and the pydicom plugin that must decode it in a
# complete install. pylibjpeg finds its plugins through package metadata (entry points),
# which PyInstaller drops unless told to keep it: these checks catch exactly that.
REQUIRED_DECODERS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg",  # JPEG Extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70": "pylibjpeg",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "pylibjpeg",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pylibjpeg",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg",  # HTJ2K Lossless
    "1.2.840.10008.1.2.5": "pylibjpeg",  # RLE Lossless
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "self-test",
        help="check this installation: models, DICOM decoders, heat maps and the window",
        description="Load each bundled model, classify generated DICOM (JPEG Baseline and "
        "uncompressed) and PNG images, compute a heat map (CAM, and Grad-CAM in the full "
        "build) and open and close the main window "
        "(offscreen when there is no display). Prints a short summary (--json: the full "
        "report as JSON). Exit status: 0 when every check passed, 1 otherwise.",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the full report as JSON (for scripts)"
    )
    parser.add_argument(
        "--device", choices=DEVICE_CHOICES, default="auto", help="where the models run"
    )
    parser.add_argument(
        "--no-window", action="store_true", help="skip the main-window check (engine only)"
    )
    parser.set_defaults(run=run)


@dataclass
class Report:
    """What the self-test found; becomes the JSON summary."""

    data: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    debug: bool = False  # XRAYDESK_DEBUG: print the traceback of an unexpected failure

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run one check; any exception becomes a failure naming the step, and the run goes
        on with the checks that do not depend on it."""
        try:
            yield
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            if not isinstance(exc, (SelfTestError, ModelError)):
                reason = f"{type(exc).__name__}: {reason}"
                if self.debug:
                    traceback.print_exc()
            self.failures.append({"step": name, "error": reason})


class SelfTestError(Exception):
    """A check found something wrong; the message says what."""


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    report = Report(debug=from_environ().debug)  # a bad XRAYDESK_* value: stops here
    report.data.update(_environment())
    with tempfile.TemporaryDirectory(prefix="xraydesk-selftest-") as tmp:
        workdir = Path(tmp)
        images: dict[str, Path] = {}
        with report.step("write sample images"):
            images = write_samples(workdir)
        with report.step("DICOM decoders"):
            report.data["decoders"] = check_decoders(images)
        xrays = {}
        with report.step("load sample images"):
            xrays, report.data["images"] = load_samples(images)
        cards: list[ModelCard] = []
        with report.step("bundled models"):
            cards = bundled_model_cards()
        report.data["models"] = []
        for card in cards:
            with report.step(f"model {card.name}"):
                report.data["models"].append(check_model(card, xrays, args.device))
        if args.no_window:
            report.data["window"] = "skipped (--no-window)"
        elif "png" in images:
            with report.step("main window"):
                report.data["window"] = check_window(images["png"], workdir)
    report.data["seconds"] = round(time.perf_counter() - start, 2)
    report.data["ok"] = not report.failures
    if report.failures:
        report.data["failures"] = report.failures
    if getattr(args, "json", False):
        print(json.dumps(report.data, indent=2))
    else:
        print("\n".join(summary_lines(report)))
    for failure in report.failures:
        print(f"xraydesk self-test: FAILED {failure['step']}: {failure['error']}", file=sys.stderr)
    return EXIT_FAILED if report.failures else EXIT_OK


def summary_lines(report: Report) -> list[str]:
    """The human summary: one line per part checked, then the failures (a person reads
    this; scripts and the build use --json)."""
    data = report.data
    verdict = "FAILED" if report.failures else "passed"
    lines = [
        f"XRayDesk {data.get('xraydesk', '')} self-test {verdict} "
        f"in {data.get('seconds', 0):g} s ({data.get('build', '?')} build, "
        f"{data.get('platform', '')}, Python {data.get('python', '')})"
    ]
    if "decoders" in data:
        lines.append(f"  DICOM decoders: {len(data['decoders'])} transfer syntaxes decode")
    if "images" in data:
        lines.append(f"  sample images: {len(data['images'])} written and read back")
    for model in data.get("models", []):
        maps = [m for m in ("cam", "gradcam", "gradcam++") if m in model]
        extra = f", heat maps: {', '.join(maps)}" if maps else ""
        lines.append(
            f"  model {model['name']} {model['version']}: {len(model['predictions'])} images "
            f"classified on {model['device']} (loaded in {model['load_seconds']:g} s){extra}"
        )
    window = data.get("window")
    if isinstance(window, dict):
        width, height = window.get("screenshot", (0, 0))
        lines.append(f"  main window: opened ({window.get('platform')}, {width} x {height})")
    elif window:
        lines.append(f"  main window: {window}")
    lines += [f"  FAILED {f['step']}: {f['error']}" for f in report.failures]
    lines.append("Full report: xraydesk self-test --json")
    return lines


def _environment() -> dict[str, Any]:
    import pydicom

    from xraydesk.optional import has_torch, installed
    from xraydesk.runtime.select import installed_runtimes

    torch_version = cuda = None
    if has_torch():
        import torch

        torch_version, cuda = torch.__version__, torch.version.cuda
    return {
        "xraydesk": __version__,
        "build": "full" if torch_version else "light",
        "frozen": bool(getattr(sys, "frozen", False)),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "torch": torch_version,
        "torch_cuda": cuda,
        "runtimes": installed_runtimes(),
        "grad_cam": installed("pytorch_grad_cam"),
        "pydicom": pydicom.__version__,
        "bundled_models_dir": str(paths.bundled_models_dir()),
    }


# --- sample images, made here ------------------------------------------------------------


def synthetic_chest(bits: int = 12) -> np.ndarray:
    """A smooth, chest-like test pattern (body, two dark lung fields, a bright spine) as
    unsigned integers of ``bits`` depth. Deterministic; no patient data anywhere."""
    rows, cols = IMAGE_SHAPE
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    y, x = y / (rows - 1) * 2 - 1, x / (cols - 1) * 2 - 1
    body = np.clip(1.2 - (x / 0.95) ** 2 - (y / 1.1) ** 4, 0, 1)
    lungs = sum(
        np.exp(-((((x - cx) / 0.3) ** 2 + ((y + 0.05) / 0.55) ** 2) ** 2)) for cx in (-0.42, 0.42)
    )
    spine = np.exp(-((x / 0.08) ** 2)) * (y > -0.8)
    ribs = 0.08 * np.sin(18 * y) * (lungs > 0.2)
    unit = np.clip(0.15 + 0.6 * body - 0.45 * lungs + 0.35 * spine + ribs, 0, 1)
    return np.round(unit * (2**bits - 1)).astype(np.uint16 if bits > 8 else np.uint8)


def write_samples(directory: Path) -> dict[str, Path]:
    """The files the self-test classifies: key -> path."""
    from PIL import Image
    from pydicom.uid import JPEG2000Lossless, RLELossless

    pixels12 = synthetic_chest(12)
    pixels8 = synthetic_chest(8)
    samples = {
        "dicom_uncompressed": _write_dicom(directory / "uncompressed.dcm", pixels12, 12),
        "dicom_jpeg_baseline": _write_jpeg_baseline_dicom(directory / "jpeg-baseline.dcm", pixels8),
        "dicom_rle": _write_dicom(directory / "rle.dcm", pixels12, 12, RLELossless, "pydicom"),
        "dicom_jpeg2000": _write_dicom(
            directory / "jpeg2000.dcm", pixels12, 12, JPEG2000Lossless, "pylibjpeg"
        ),
    }
    png = directory / "chest.png"
    Image.fromarray(pixels8).save(png)
    samples["png"] = png
    return samples


def _dataset(pixels: np.ndarray, bits: int):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientName = "SELFTEST^XRAYDESK"
    ds.PatientID = "SELFTEST"
    ds.set_pixel_data(pixels, "MONOCHROME2", bits)
    if bits > 8:
        ds.WindowCenter, ds.WindowWidth = 2**bits / 2, 2**bits
    return ds


def _write_dicom(
    path: Path, pixels: np.ndarray, bits: int, tsyntax: str | None = None, plugin: str = ""
) -> Path:
    ds = _dataset(pixels, bits)
    if tsyntax is not None:
        ds.compress(tsyntax, encoding_plugin=plugin, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
    return path


def _write_jpeg_baseline_dicom(path: Path, pixels8: np.ndarray) -> Path:
    """pydicom has no JPEG Baseline encoder: Pillow writes the JPEG stream, pydicom
    encapsulates it (PS3.5 A.4), as a modality's export would."""
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    buffer = io.BytesIO()
    Image.fromarray(pixels8).save(buffer, format="JPEG", quality=95)
    ds = _dataset(pixels8, 8)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.LossyImageCompression = "01"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    return path


# --- checks ----------------------------------------------------------------------------------


def check_decoders(images: dict[str, Path]) -> dict[str, list[str]]:
    """Every required decoder plugin is available, and each one decodes the compressed
    samples exactly (JPEG Baseline within a lossy tolerance)."""
    from pydicom import dcmread
    from pydicom.pixels import get_decoder, pixel_array
    from pydicom.uid import UID

    available: dict[str, list[str]] = {}
    missing = []
    for uid, plugin in REQUIRED_DECODERS.items():
        plugins = sorted(get_decoder(UID(uid)).available_plugins)
        available[UID(uid).name] = plugins
        if plugin not in plugins:
            missing.append(f"{UID(uid).name} ({plugin})")
    if missing:
        raise SelfTestError("no decoder plugin for " + "; ".join(missing))
    references = {8: synthetic_chest(8), 12: synthetic_chest(12)}
    lossy = {"dicom_jpeg_baseline": JPEG_TOLERANCE, "dicom_rle": 0.0, "dicom_jpeg2000": 0.0}
    for key, tolerance in lossy.items():
        ds = dcmread(images[key])
        expected = references[int(ds.BitsStored)].astype(np.float64)
        tsyntax = ds.file_meta.TransferSyntaxUID
        for plugin in get_decoder(tsyntax).available_plugins:
            decoded = pixel_array(images[key], decoding_plugin=plugin).astype(np.float64)
            same_shape = decoded.shape == expected.shape
            error = float(np.abs(decoded - expected).mean()) if same_shape else np.inf
            if error > tolerance:
                raise SelfTestError(
                    f"{tsyntax.name} decoded by {plugin} differs from what was encoded "
                    f"(shape {decoded.shape}, mean error {error:.2f})"
                )
    return available


def load_samples(images: dict[str, Path]) -> tuple[dict[str, Any], dict[str, dict]]:
    """Each sample through the app's own loader; their pixels match what was written."""
    from xraydesk.imaging import load_xray

    expected = {
        "dicom_uncompressed": (synthetic_chest(12), 0.0),
        "dicom_jpeg_baseline": (synthetic_chest(8), JPEG_TOLERANCE),
        "dicom_rle": (synthetic_chest(12), 0.0),
        "dicom_jpeg2000": (synthetic_chest(12), 0.0),
        "png": (synthetic_chest(8), 0.0),
    }
    xrays, summary = {}, {}
    for key, path in images.items():
        xray = load_xray(path)
        reference, tolerance = expected[key]
        if xray.shape != reference.shape:
            raise SelfTestError(
                f"{path.name}: loaded as {xray.shape}, written as {reference.shape}"
            )
        error = float(np.abs(xray.pixels - reference.astype(np.float32)).mean())
        if error > tolerance:
            raise SelfTestError(f"{path.name}: pixels differ from what was written ({error:.2f})")
        xrays[key] = xray
        summary[key] = {
            "format": xray.metadata.format,
            "transfer_syntax": xray.metadata.transfer_syntax,
            "shape": list(xray.shape),
        }
    return xrays, summary


def bundled_model_cards() -> list[ModelCard]:
    """Every card in the bundled models folder; a card that does not read is a failure
    here (the library would skip it with a warning)."""
    directory = paths.bundled_models_dir()
    card_paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not card_paths:
        raise SelfTestError(
            f"no bundled model in {directory}: this build would ship without a model "
            "(put NAME.json and NAME.safetensors in models/ before building)"
        )
    return [ModelCard.read(path, source="bundled") for path in card_paths]


def check_model(card: ModelCard, xrays: dict[str, Any], device: str) -> dict[str, Any]:
    """Load (with the weights' sha256 check), classify every sample, heat-map one (CAM,
    and Grad-CAM where the build has it)."""
    from xraydesk.classifier import Classifier
    from xraydesk.explain.heatmaps import heat_map
    from xraydesk.explain.methods import CAM, GRADCAM, available, method_label

    start = time.perf_counter()
    classifier = Classifier.load(card, device=device)
    result: dict[str, Any] = {
        "name": card.name,
        "version": card.version,
        "device": classifier.device.label,
        "load_seconds": round(time.perf_counter() - start, 2),
        "predictions": {},
    }
    if not xrays:
        raise SelfTestError("no sample image loaded, nothing to classify")
    for key, xray in xrays.items():
        prediction = classifier.predict(xray)
        probs = np.array(list(prediction.probabilities.values()))
        if len(probs) != len(card.classes) or not np.isfinite(probs).all():
            raise SelfTestError(f"{key}: invalid probabilities {prediction.probabilities}")
        if abs(probs.sum() - 1.0) > 1e-3:
            raise SelfTestError(f"{key}: probabilities sum to {probs.sum():.4f}, not 1")
        result["predictions"][key] = {
            "predicted": prediction.predicted,
            "probabilities": {k: round(v, 4) for k, v in prediction.probabilities.items()},
        }
    key = "dicom_jpeg_baseline" if "dicom_jpeg_baseline" in xrays else next(iter(xrays))
    for method in (CAM, GRADCAM):  # the default map; Grad-CAM where the build has it
        if method != CAM and not available(method):
            continue
        cam = heat_map(classifier, xrays[key], method=method)
        heatmap = cam.heatmap
        label = method_label(method)
        if heatmap.shape != xrays[key].shape or not np.isfinite(heatmap).all():
            raise SelfTestError(f"{label} on {key}: heat map of shape {heatmap.shape}, not finite")
        if heatmap.min() < 0 or heatmap.max() > 1:
            raise SelfTestError(f"{label} on {key}: values outside [0, 1]")
        result[method] = {
            "image": key,
            "class": cam.class_id,
            "shape": list(heatmap.shape),
            "seconds": round(cam.seconds, 2),
        }
    return result


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_window(image: Path, workdir: Path, gui_main: Callable | None = None) -> dict[str, Any]:
    """Open the main window on ``image`` through the app's ``--screenshot`` mode (which
    waits for the prediction and the overlay, saves the window and quits), then check the
    saved picture. Offscreen when there is no display, before Qt is first imported."""
    if not _has_display():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if gui_main is None:
        try:
            from xraydesk.gui.app import main as gui_main
        except ImportError as exc:
            raise SelfTestError(f"the desktop app cannot be imported ({exc})") from exc
    shot = workdir / "window.png"
    start = time.perf_counter()
    try:  # stdout carries only the JSON summary: the app's own messages go to stderr
        with contextlib.redirect_stdout(sys.stderr):
            code = gui_main(["--screenshot", str(shot), "--timeout", "300", str(image)])
    except SystemExit as exc:  # an app may end through sys.exit
        code = exc.code
    if code not in (0, None):
        raise SelfTestError(f"the main window exited with status {code}")
    if not shot.is_file():
        raise SelfTestError("the main window did not save its screenshot")
    from PIL import Image

    with Image.open(shot) as picture:
        size = picture.size
        extrema = picture.convert("L").getextrema()
    if size[0] < 200 or size[1] < 150 or extrema[0] == extrema[1]:
        raise SelfTestError(f"the main window's screenshot is blank or tiny ({size})")
    return {
        "platform": os.environ.get("QT_QPA_PLATFORM", "native"),
        "screenshot": list(size),
        "seconds": round(time.perf_counter() - start, 2),
    }
