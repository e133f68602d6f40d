"""Mutation fuzzing of the loader (issue 18, "beyond the list").

Mutants of the real samples (read in place from ../shared/data/samples, mutated in
memory, written to tmp_path) and of synthetic files, from a fixed seed. Every outcome
must be a loaded XRay whose pixels and window are finite, or an ImageLoadError naming
the file; any other exception, or a load slower than the per-file bound, fails.

The CI run (a few hundred mutants) takes well under a minute; the ``slow`` run takes
ten times as many. Both print their counts of inputs and outcomes.
"""

from __future__ import annotations

import io
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.uid import JPEGBaseline8Bit, JPEGLosslessSV1, RLELossless

from tests.dicom_factory import make_dicom
from xraydesk.imaging import ImageLoadError, XRay, load_xray

SEED = 20240518
PER_FILE_S = 10.0  # a generous bound for a shared 2-core CI machine; typical loads take ms

# DICOM attributes worth lying about, with the lies.
HEADER_LIES: dict[str, list[object]] = {
    "Rows": [0, 1, 7, 32, 65535],
    "Columns": [0, 1, 7, 65535],
    "BitsAllocated": [0, 1, 7, 12, 32, 64],
    "BitsStored": [0, 1, 13, 17, 33],
    "HighBit": [0, 31],
    "PixelRepresentation": [1, 2],
    "SamplesPerPixel": [0, 2, 3, 4],
    "NumberOfFrames": ["0", "2", "1000000", "-1", "abc"],
    "PhotometricInterpretation": ["MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL_422", "XYZ"],
    "RescaleSlope": ["NaN", "inf", "-1e309", "1e38", "0", "-1", "abc"],
    "RescaleIntercept": ["NaN", "-inf", "1e38", "abc"],
    "WindowCenter": ["NaN", "inf", "-1e39", "1e6", "abc"],
    "WindowWidth": ["NaN", "inf", "0", "-5", "1e39", "abc"],
    "VOILUTFunction": ["SIGMOID", "LINEAR_EXACT", "BOGUS"],
    "PresentationLUTShape": ["INVERSE", "BOGUS"],
    "PlanarConfiguration": [1, 5],
}


@dataclass
class Tally:
    """What happened to every input, for the printed report and the assertions."""

    inputs: Counter[str] = field(default_factory=Counter)  # per source kind
    outcomes: Counter[str] = field(default_factory=Counter)  # loaded / error cause
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0

    def report(self, title: str) -> str:
        causes = Counter({k: v for k, v in self.outcomes.items() if k != "loaded"})
        top = ", ".join(f"{cause!r}: {n}" for cause, n in causes.most_common(8))
        return (
            f"{title}: {sum(self.inputs.values())} inputs {dict(self.inputs)}; "
            f"loaded {self.outcomes['loaded']}, refused {sum(causes.values())} "
            f"(top causes {top}); other exceptions or hangs {len(self.failures)}; "
            f"slowest {self.slowest * 1000:.0f} ms"
        )


# --- sources ------------------------------------------------------------------------------


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _synthetic_sources(tmp: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(SEED)
    grey12 = rng.integers(0, 4096, (48, 40), dtype=np.uint16)
    grey8 = rng.integers(0, 256, (48, 40), dtype=np.uint8)
    files = {
        "native-rescale-window": make_dicom(
            tmp / "a.dcm", grey12, bits_stored=12, rescale=(2, -1024), window=(1000, 3000)
        ),
        "native-voi-lut-mono1": make_dicom(
            tmp / "b.dcm",
            grey12,
            photometric="MONOCHROME1",
            bits_stored=12,
            voi_lut=(0, 16, np.arange(4096) * 16),
        ),
        "native-multiframe": make_dicom(tmp / "c.dcm", np.stack([grey12] * 3), bits_stored=12),
        "rle": make_dicom(tmp / "d.dcm", grey12, bits_stored=12, transfer_syntax=RLELossless),
        "jpeg-lossless": make_dicom(
            tmp / "e.dcm", grey12, bits_stored=12, transfer_syntax=JPEGLosslessSV1
        ),
        "jpeg-baseline": make_dicom(tmp / "f.dcm", grey8, transfer_syntax=JPEGBaseline8Bit),
        "no-preamble": make_dicom(tmp / "g.dcm", grey12, bits_stored=12, preamble=False),
    }
    out = {name: path.read_bytes() for name, path in files.items()}
    out["png-16bit"] = _png(grey12)
    for fmt in ("TIFF", "BMP", "JPEG"):
        buf = io.BytesIO()
        Image.fromarray(grey8).save(buf, format=fmt)
        out[fmt.lower()] = buf.getvalue()
    return out


def _sample_sources(samples_dir: Path) -> dict[str, bytes]:
    """The real samples' bytes, read in place (never copied into the repository)."""
    return {
        f"sample:{path.name}": path.read_bytes()
        for path in sorted(samples_dir.rglob("*"))
        if path.is_file()
    }


# --- mutations ----------------------------------------------------------------------------


def _flip_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    head = len(out) if rng.random() < 0.3 else min(len(out), 4096)  # headers matter most
    for _ in range(int(rng.integers(1, 16))):
        out[int(rng.integers(0, head))] = int(rng.integers(0, 256))
    return bytes(out)


def _truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(1, len(data)))]


def _splice(data: bytes, rng: np.random.Generator) -> bytes:
    """Delete or duplicate a run of bytes, shifting everything after it."""
    at = int(rng.integers(0, len(data)))
    size = int(rng.integers(1, 512))
    if rng.random() < 0.5:
        return data[:at] + data[at + size :]
    return data[:at] + data[at : at + size] * 2 + data[at + size :]


def _fill(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(0, len(data)))
    value = bytes([int(rng.choice([0x00, 0xFF]))])
    return data[:at] + value * int(rng.integers(4, 256)) + data[at + 260 :]


def _lie_in_header(data: bytes, rng: np.random.Generator) -> bytes:
    """Set one to three DICOM attributes to hostile values (non-DICOM: flip bytes)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(io.BytesIO(data), force=True)
            keys = list(HEADER_LIES)
            for _ in range(int(rng.integers(1, 4))):
                keyword = keys[int(rng.integers(0, len(keys)))]
                values = HEADER_LIES[keyword]
                setattr(ds, keyword, values[int(rng.integers(0, len(values)))])
            buf = io.BytesIO()
            ds.save_as(buf)
            return buf.getvalue()
    except Exception:  # not a DICOM, or pydicom refuses to write the lie
        return _flip_bytes(data, rng)


MUTATIONS: list[Callable[[bytes, np.random.Generator], bytes]] = [
    _flip_bytes,
    _truncate,
    _splice,
    _fill,
    _lie_in_header,
    _lie_in_header,  # twice: header lies find more than random bytes
]


def _mutants(sources: dict[str, bytes], count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    names = sorted(sources)
    for i in range(count):
        name = names[i % len(names)]
        data = sources[name]
        for _ in range(int(rng.integers(1, 3))):  # one or two stacked mutations
            mutate = MUTATIONS[int(rng.integers(0, len(MUTATIONS)))]
            data = mutate(data, rng) or b"\x00"
        yield name, data


# --- the check ----------------------------------------------------------------------------


def _load_with_deadline(path: Path) -> tuple[object, float]:
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(load_xray(path))
        except BaseException as exc:
            outcome.append(exc)

    started = time.perf_counter()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(PER_FILE_S)
    seconds = time.perf_counter() - started
    return (
        outcome[0] if outcome else TimeoutError(f"still loading after {seconds:.0f} s")
    ), seconds


def _judge(path: Path, result: object) -> tuple[str, str | None]:
    """(outcome label, failure text or None)."""
    if isinstance(result, XRay):
        window = result.window
        finite = np.isfinite(result.pixels).all() and np.isfinite([window.center, window.width])
        if not finite.all() or window.width <= 0:
            return "loaded", f"non-finite pixels or window {window}"
        if not np.isfinite(result.render()).all():
            return "loaded", "render() gave non-finite values"
        return "loaded", None
    if isinstance(result, ImageLoadError):
        label = " ".join(result.cause.split()[:4])
        if result.path != path or path.name not in str(result):
            return label, f"error does not name the file: {result}"
        return label, None
    return type(result).__name__, f"{type(result).__name__}: {result}"


def fuzz(sources: dict[str, bytes], count: int, seed: int, tmp: Path) -> Tally:
    tally = Tally()
    for i, (source, data) in enumerate(_mutants(sources, count, seed)):
        path = tmp / f"mutant-{i:05d}{'.dcm' if data[128:132] == b'DICM' else ''}"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about what it tolerates
            result, seconds = _load_with_deadline(path)
        label, failure = _judge(path, result)
        tally.inputs[source.split(":")[0] if source.startswith("sample:") else "synthetic"] += 1
        tally.outcomes[label] += 1
        tally.slowest = max(tally.slowest, seconds)
        if failure is not None:
            tally.failures.append(f"mutant {i} of {source}: {failure}")
        else:
            path.unlink()  # keep failing mutants for inspection
    return tally


def _assert_clean(tally: Tally, title: str) -> None:
    print("\n" + tally.report(title))
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert tally.outcomes["loaded"] > 0 and len(tally.outcomes) > 3  # the fuzz bites


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> dict[str, bytes]:
    return {
        **_sample_sources(samples_dir),
        **_synthetic_sources(tmp_path_factory.mktemp("fuzz-sources")),
    }


@pytest.mark.data
def test_loader_survives_mutants(sources: dict[str, bytes], tmp_path: Path) -> None:
    started = time.perf_counter()
    tally = fuzz(sources, count=1500, seed=SEED, tmp=tmp_path)
    _assert_clean(tally, f"fuzz (CI, seed {SEED}, {time.perf_counter() - started:.1f} s)")


@pytest.mark.slow
@pytest.mark.data
def test_loader_survives_many_mutants(sources: dict[str, bytes], tmp_path: Path) -> None:
    started = time.perf_counter()
    tally = fuzz(sources, count=15000, seed=SEED + 1, tmp=tmp_path)
    _assert_clean(tally, f"fuzz (slow, seed {SEED + 1}, {time.perf_counter() - started:.1f} s)")


@pytest.mark.data
def test_rust_decoder_panic_is_an_image_load_error(
    sources: dict[str, bytes], tmp_path: Path
) -> None:
    """Found by this fuzz: mutant 156 makes pylibjpeg-rle panic, and pyo3's
    PanicException (a BaseException) escaped load_xray's ``except Exception``."""
    *_, (source, data) = _mutants(sources, 157, SEED)
    assert source == "rle"
    path = tmp_path / "mutant-156.dcm"
    path.write_bytes(data)
    with pytest.raises(ImageLoadError, match="the decoder crashed") as info:
        load_xray(path)
    assert info.value.path == path
