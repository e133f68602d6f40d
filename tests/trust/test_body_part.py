"""A DICOM whose Body Part Examined names another part (HAND, KNEE, ABDOMEN...) is flagged
``not_chest`` from its header, like a lateral ViewPosition, and its class is withheld.

Found by a hostile-input sweep: a chest film relabelled BodyPartExamined HAND read
"Normal 83.5 %" with no warning. Only exact names of other parts warn: chest-like, mixed
or unknown values never do (a wrong header must not hide a real chest film's answer)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tests.dicom_factory import make_dicom
from tests.xrays import xray_from_pixels
from xraydesk.cli import main
from xraydesk.imaging.loader import load_xray
from xraydesk.imaging.xray import XRay
from xraydesk.trust.body_part import is_chest, other_part
from xraydesk.trust.codes import NOT_CHEST
from xraydesk.trust.gate import view_warnings


def _with_part(part: str | None) -> XRay:
    xray = xray_from_pixels(np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64))
    return dataclasses.replace(xray, metadata=dataclasses.replace(xray.metadata, body_part=part))


@pytest.mark.parametrize("part", ["HAND", "knee", " Abdomen ", "C-SPINE", "LOWER_LEG", "SKULL"])
def test_another_body_part_is_not_chest(part: str) -> None:
    found = view_warnings(_with_part(part))
    assert [w.code for w in found] == [NOT_CHEST]
    assert part.strip().upper() in found[0].message


@pytest.mark.parametrize(
    "part", [None, "", "CHEST", "THORAX", "PORT CHEST", "CHEST_ABDOMEN", "TSPINE", "LUNG", "XR"]
)
def test_chest_like_or_unknown_parts_never_warn(part: str | None) -> None:
    assert view_warnings(_with_part(part)) == []


@pytest.mark.parametrize(
    ("part", "chest"),
    [(None, True), ("", True), ("chest", True), ("Port Chest", True), ("THORAX", True),
     ("HAND", False), ("TSPINE", False), ("CHEST_ABDOMEN", False), ("XR", False)],
)  # fmt: skip
def test_the_nodes_allow_list_and_the_verdicts_deny_list_share_one_reading(
    part: str | None, chest: bool
) -> None:
    """The DICOM node stores only plain chest values; the verdict flags only clear other
    parts; a value in neither (TSPINE, CHEST_ABDOMEN, XR) is stored by neither rule's
    mistake: the node passes it over, a file opened on purpose gets no header warning."""
    assert is_chest(part) is chest
    assert not (is_chest(part) and other_part(part) is not None)


def test_cli_withholds_a_film_labelled_hand(
    tmp_path: Path, chest_pixels: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    films = {
        part: make_dicom(
            tmp_path / f"{part.lower()}.dcm",
            chest_pixels,
            bits_stored=12,
            extra={"BodyPartExamined": part},
        )
        for part in ("CHEST", "HAND")
    }
    assert load_xray(films["HAND"]).metadata.body_part == "HAND"
    assert main(["classify", "--json", "--no-skip", str(tmp_path)]) == 0
    rows = {Path(r["path"]).stem: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert NOT_CHEST in rows["hand"]["warnings"] and rows["hand"]["prediction"] is None
    assert rows["hand"]["withheld_prediction"] is not None
    assert all("body part" not in w["message"] for w in rows["chest"]["warning_messages"])
