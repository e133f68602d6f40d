"""Warn before training when each class comes from a different kind of file.

If every "normal" image is an 8-bit PNG of about 1000 pixels and every "pneumonia" image a
16-bit DICOM of 2500, a network can learn the file, not the disease: it scores well on
the split and fails on the next hospital (the shortcut risk). This reads only the
headers of a sample of each class (format, bit depth or colour mode, width and height)
and says, in words, where the classes differ. No Qt here: the wizard shows the sentences.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xraydesk.imaging.loader import sniff_format
from xraydesk.trainer.dataset import Sample

PER_CLASS = 150  # headers read per class: enough to see a pattern, quick on a share
DOMINANT = 0.8  # a class "is" a value when at least this share of its files have it
SIZE_RATIO = 1.5  # medians this far apart, with quartiles apart, is a size difference
RISK = (
    "A model can learn to tell the classes apart by this instead of by the lungs "
    "(a shortcut): it will look good on this data and fail on images from elsewhere. "
    "Mix sources within each class, or convert the files alike."
)


@dataclass(frozen=True)
class FileFacts:
    """What a file's header says: format, bit depth or colour mode, width, height."""

    format: str
    depth: str  # "8-bit grey", "16-bit grey", "RGB", "12-bit (DICOM)"...
    width: int
    height: int


def read_facts(path: Path) -> FileFacts | None:
    """The header facts of an image file (None when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return None
    fmt = sniff_format(head)
    if fmt is None:
        return None
    if fmt == "DICOM":
        return _dicom_facts(path)
    return _raster_facts(path, fmt)


_PIL_DEPTHS = {
    "1": "1-bit",
    "L": "8-bit grey",
    "P": "8-bit palette",
    "I;16": "16-bit grey",
    "I;16B": "16-bit grey",
    "I": "32-bit grey",
    "F": "32-bit float",
    "RGB": "RGB colour",
    "RGBA": "RGBA colour",
    "LA": "8-bit grey + alpha",
    "CMYK": "CMYK colour",
}


def _raster_facts(path: Path, fmt: str) -> FileFacts | None:
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
            depth = _PIL_DEPTHS.get(image.mode, image.mode)
    except Exception:
        return None
    return FileFacts(fmt, depth, int(width), int(height))


def _dicom_facts(path: Path) -> FileFacts | None:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        bits = int(ds.get("BitsStored", 0) or 0)
        colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1
        depth = "RGB colour" if colour else f"{bits}-bit grey"
        return FileFacts("DICOM", depth, int(ds.Columns), int(ds.Rows))
    except Exception:
        return None


def _dominant(values: Sequence[str]) -> tuple[str, float] | None:
    if not values:
        return None
    value, count = Counter(values).most_common(1)[0]
    return value, count / len(values)


def _categorical(
    what: str, per_class: Mapping[str, Sequence[str]], names: Mapping[str, str]
) -> str | None:
    """A sentence when two classes are each mostly one value and the values differ."""
    dominant = {c: d for c, v in per_class.items() if (d := _dominant(v)) and d[1] >= DOMINANT}
    if len(set(value for value, _ in dominant.values())) < 2:
        return None
    parts = [f"{names.get(c, c)}: {share:.0%} {value}" for c, (value, share) in dominant.items()]
    return f"The classes differ in {what} ({'; '.join(parts)})."


def _quartiles(values: Sequence[int]) -> tuple[float, float, float]:
    if len(values) < 4:
        median = float(statistics.median(values))
        return float(min(values)), median, float(max(values))
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


def _sizes(per_class: Mapping[str, Sequence[int]], names: Mapping[str, str]) -> str | None:
    """A sentence when one class's images are clearly larger than another's: medians
    SIZE_RATIO apart and the middle halves of the two not overlapping."""
    quart = {c: _quartiles(v) for c, v in per_class.items() if v}
    pairs = [
        (a, b)
        for a in quart
        for b in quart
        if quart[a][1] >= SIZE_RATIO * quart[b][1] and quart[a][0] > quart[b][2]
    ]
    if not pairs:
        return None
    parts = [f"{names.get(c, c)}: median longest side {q[1]:.0f} px" for c, q in quart.items()]
    return f"The classes differ in image size ({'; '.join(parts)})."


def class_differences(
    samples: Sequence[Sample],
    names: Mapping[str, str] | None = None,
    per_class: int = PER_CLASS,
    read: Callable[[Path], FileFacts | None] = read_facts,
    seed: int = 0,
) -> list[str]:
    """Sentences (shown with ``RISK``) where the classes differ in file format, bit depth
    or colour mode, or image size; [] when they look alike. Reads ``per_class`` headers a
    class, chosen at random with ``seed`` so a check repeats."""
    names = names or {}
    by_class: dict[str, list[Path]] = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample.path)
    if len(by_class) < 2:
        return []
    rng = random.Random(seed)
    formats: dict[str, list[str]] = {}
    depths: dict[str, list[str]] = {}
    widths: dict[str, list[int]] = {}
    for label, paths in by_class.items():
        chosen = rng.sample(paths, min(per_class, len(paths)))
        facts = [f for f in (read(p) for p in chosen) if f is not None]
        formats[label] = [f.format for f in facts]
        depths[label] = [f.depth for f in facts]
        widths[label] = [max(f.width, f.height) for f in facts]
    found = [
        _categorical("file format", formats, names),
        _categorical("bit depth or colour mode", depths, names),
        _sizes(widths, names),
    ]
    return [text for text in found if text]
