"""Issue 29 #4: the training data check warns when each class comes from a different
kind of file (format, bit depth or mode, size): the shortcut risk. No Qt."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.dicom_factory import make_dicom
from xraydesk.trainer.class_sources import RISK, class_differences, read_facts
from xraydesk.trainer.dataset import Sample

NAMES = {"normal": "Normal", "pneumonia": "Pneumonia"}


def _png(path: Path, size: int, mode: str = "L", fmt: str = "PNG", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (size, size), dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).convert(mode)
    image.save(path, fmt)
    return path


def _samples(root: Path, label: str, count: int, **kwargs) -> list[Sample]:
    suffix = ".jpg" if kwargs.get("fmt") == "JPEG" else ".png"
    return [
        Sample(_png(root / label / f"{k}{suffix}", seed=k, **kwargs), label, "pool")
        for k in range(count)
    ]


def test_alike_classes_raise_nothing(tmp_path):
    samples = _samples(tmp_path, "normal", 8, size=64) + _samples(tmp_path, "pneumonia", 8, size=66)
    assert class_differences(samples, NAMES) == []


def test_format_difference_is_named(tmp_path):
    samples = _samples(tmp_path, "normal", 6, size=64) + _samples(
        tmp_path, "pneumonia", 6, size=64, fmt="JPEG"
    )
    found = class_differences(samples, NAMES)
    assert len(found) == 1 and "file format" in found[0]
    assert "Normal: 100% PNG" in found[0] and "Pneumonia: 100% JPEG" in found[0]
    assert "shortcut" in RISK


def test_bit_depth_and_size_differences_are_named(tmp_path):
    samples = _samples(tmp_path, "normal", 6, size=40) + _samples(
        tmp_path, "pneumonia", 6, size=96, mode="I;16"
    )
    found = class_differences(samples, NAMES)
    assert any("bit depth" in t and "16-bit grey" in t and "8-bit grey" in t for t in found)
    assert any("image size" in t and "96 px" in t for t in found)


def test_dicom_headers_are_read_without_pixels(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", np.zeros((30, 20), dtype=np.uint16), bits_stored=12)
    facts = read_facts(path)
    assert facts is not None and facts.format == "DICOM"
    assert (facts.depth, facts.width, facts.height) == ("12-bit grey", 20, 30)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert read_facts(tmp_path / "junk.png") is None


def test_no_qt_imported():
    assert "PySide6" not in Path(sys.modules[class_differences.__module__].__file__).read_text()
