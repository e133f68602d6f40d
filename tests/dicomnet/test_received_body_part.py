"""Which received objects the DICOM node stores and classifies, by Body Part Examined:
plainly the chest or absent (``trust.body_part.is_chest``, shared with the verdict's
header check), in any spelling a modality writes ("Port Chest", "thorax")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from tests.dicom_factory import make_dicom
from xraydesk.dicomnet.received import not_a_chest_image, work_item


def _received(tmp_path: Path, part: str | None):
    extra = {} if part is None else {"BodyPartExamined": part}
    pixels = (np.arange(32 * 32).reshape(32, 32) % 4096).astype(np.uint16)
    ds = dcmread(make_dicom(tmp_path / "in.dcm", pixels, bits_stored=12, extra=extra))
    return ds, work_item(ds, "MODALITY")


@pytest.mark.parametrize("part", [None, "CHEST", "chest", "Port Chest", "THORAX", "LUNG"])
def test_chest_objects_are_kept(tmp_path: Path, part: str | None) -> None:
    ds, item = _received(tmp_path, part)
    assert not_a_chest_image(ds, item, own_manufacturer="XRayDesk") is None


@pytest.mark.parametrize("part", ["HAND", "SKULL", "ABDOMEN", "TSPINE", "CHEST_ABDOMEN"])
def test_other_parts_are_passed_over_with_the_reason(tmp_path: Path, part: str) -> None:
    ds, item = _received(tmp_path, part)
    reason = not_a_chest_image(ds, item, own_manufacturer="XRayDesk")
    assert reason == f"body part {part} is not the chest"
