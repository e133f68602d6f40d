"""What the four corners of the image say, as plain text (no Qt here).

The top left (window, zoom, inversion, heat map) and bottom left (sex and age) are drawn
by the view itself; this model fills the two right-hand corners as reading-room viewers
do: who and when at the top right, how the image is shown at the bottom right. Patient
identity (name, ID, birth date) is written only when the reader has asked to see it
(the same "Show patient data" switch as the Image info panel, reset for every image).
"""

from __future__ import annotations

from dataclasses import dataclass

from xraydesk.imaging.xray import ImageMetadata, PatientInfo
from xraydesk.viewer.orientation import Orientation

HIDDEN_TEXT = "Patient identity hidden"


@dataclass(frozen=True)
class Corners:
    top_right: tuple[str, ...] = ()
    bottom_right: tuple[str, ...] = ()


def format_date(value: str | None) -> str:
    """DICOM DA (YYYYMMDD) as YYYY-MM-DD; other text unchanged, "" when absent."""
    text = (value or "").strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def format_name(value: str | None) -> str:
    """DICOM PN (FAMILY^GIVEN^MIDDLE) as 'FAMILY, GIVEN MIDDLE'."""
    family, _, rest = (value or "").partition("^")
    given = " ".join(part for part in rest.split("^") if part)
    return f"{family}, {given}" if family and given else (family or given)


def identity_lines(patient: PatientInfo | None, show: bool) -> tuple[str, ...]:
    """Name, ID and birth date when shown; one neutral line when hidden (if any exist)."""
    if patient is None or not any((patient.name, patient.patient_id, patient.birth_date)):
        return ()
    if not show:
        return (HIDDEN_TEXT,)
    lines = []
    if patient.name:
        lines.append(format_name(patient.name))
    if patient.patient_id:
        lines.append(f"ID {patient.patient_id}")
    if patient.birth_date:
        lines.append(f"Born {format_date(patient.birth_date)}")
    return tuple(lines)


def corner_texts(
    metadata: ImageMetadata | None,
    patient: PatientInfo | None,
    shape: tuple[int, int] | None,
    orientation: Orientation,
    show_identity: bool = False,
) -> Corners:
    """The right-hand corners for one image (empty when there is none)."""
    if metadata is None or shape is None:
        return Corners()
    top = list(identity_lines(patient, show_identity))
    if metadata.study_date:
        top.append(f"Study {format_date(metadata.study_date)}")
    kind = " ".join(p for p in (metadata.modality, metadata.view_position) if p)
    if kind:
        top.append(kind)
    if metadata.body_part:
        top.append(metadata.body_part.title())
    bottom = []
    if not orientation.is_identity:
        bottom.append(orientation.label())
    rows, cols = shape
    bottom.append(f"{cols} × {rows} px")
    if metadata.pixel_spacing is not None:
        row_mm, col_mm = metadata.pixel_spacing
        bottom.append(f"Spacing {row_mm:g} × {col_mm:g} mm")
    else:
        bottom.append("No pixel spacing: lengths in px")
    return Corners(tuple(top), tuple(bottom))
