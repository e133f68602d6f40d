"""A small DICOM film and a click on the image view, for the reading-tool tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt

from tests.dicom_factory import make_dicom


def film(path: Path, spacing=(0.2, 0.2), bits: int = 12, age: str = "068Y") -> Path:
    rng = np.random.default_rng(1)
    top = 2**bits - 1
    pixels = rng.integers(top // 8, top, (200, 160)).astype(np.uint16)
    extra = {"PatientAge": age, "PatientSex": "F"}
    return make_dicom(path, pixels, bits_stored=bits, pixel_spacing=spacing, extra=extra)


def click_scene(qtbot, view, x: float, y: float) -> None:
    point = view.mapFromScene(QPointF(x, y))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
