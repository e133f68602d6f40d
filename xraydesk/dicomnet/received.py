"""What the node reads from a received object, without letting pydicom convert a value.

Why raw: converting a value makes pydicom validate it, and its warnings carry the value
itself ("Invalid value for VR LO: '<the patient ID>'") and come once per bad component:
one Patient's Name whose length field said 0xFFFFFFF0 swallowed the pixel data and made
2,034 warnings. So the few fields the worklist keeps are read from the raw elements:
each must fit ``MAX_VALUE_BYTES`` (else the object is refused as unreadable, one log
line that names the attribute, never its value), and is decoded with the object's
character set here, quietly. The same holds for the answers to a C-FIND (``scu``).

pynetdicom's INFO and DEBUG lines print whole query and answer data sets (patient IDs
and names), so ``quiet_pynetdicom`` keeps only its warnings and errors.
"""

from __future__ import annotations

import logging

from pydicom import charset
from pydicom.datadict import dictionary_description, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from xraydesk.dicomnet.instance_files import check_uid
from xraydesk.dicomnet.worklist import WorkItem
from xraydesk.errors import XRayDeskError
from xraydesk.trust.body_part import is_chest

# Projection radiography: what a chest classifier can read.
IMAGE_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "PX", "OT"})
# The longest text a kept attribute may hold: a PN has 3 groups of 64 characters, a UI
# 64, an LO 64 (x4 for multi-byte character sets, and room for several values).
MAX_VALUE_BYTES = 1024
_PN_DELIMITERS = {0x5C, 0x3D, 0x5E}  # \ = ^


def quiet_pynetdicom() -> None:
    """pynetdicom logs warnings and errors only (a level set on purpose is kept)."""
    logger = logging.getLogger("pynetdicom")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


class UnreadableObject(XRayDeskError):
    """A received object whose kept attributes cannot be read: refused, never stored."""


def raw_text(ds: Dataset, keyword: str) -> str | None:
    """The attribute as text (None when absent or empty), read without pydicom's checks."""
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - keywords are constants here
        raise KeyError(keyword)
    elem = ds.get_item(tag)
    if elem is None:
        return None
    if not isinstance(elem, RawDataElement):  # built in memory: already a value
        value = elem.value
        return None if value in (None, "") else str(value)
    if elem.length > MAX_VALUE_BYTES or len(elem.value or b"") > MAX_VALUE_BYTES:
        raise UnreadableObject(
            f"its {dictionary_description(tag)} is {elem.length} bytes long "
            f"(at most {MAX_VALUE_BYTES})"
        )
    data = bytes(elem.value or b"").rstrip(b"\x00 ")
    if not data:
        return None
    encodings = _encodings(ds)
    try:
        if len(encodings) == 1:  # no code extensions: pydicom would warn about an ESC byte
            text = data.decode(encodings[0], "replace")
        else:
            text = charset.decode_bytes(data, encodings, _PN_DELIMITERS)
    except Exception:  # an unknown or broken character set: keep what ASCII can show
        text = data.decode("latin-1")
    return text.strip() or None


def _encodings(ds: Dataset) -> list[str]:
    raw = ds.get_item(0x00080005)  # Specific Character Set
    if not isinstance(raw, RawDataElement) or not raw.value or len(raw.value) > 256:
        return ["iso8859"]
    terms = [t.strip() for t in bytes(raw.value).decode("ascii", "replace").split("\\")]
    names = [charset.python_encoding.get(t or "ISO_IR 6") for t in terms]
    return [n for n in names if n] or ["iso8859"]


def work_item(ds: Dataset, calling: str) -> WorkItem:
    """The worklist row of ``ds`` (its SOP Instance UID checked); UnreadableObject or
    InvalidUID when the object cannot be stored safely."""
    return WorkItem(
        sop_uid=check_uid(raw_text(ds, "SOPInstanceUID"), "SOP Instance UID"),
        calling_ae=calling,
        study_uid=raw_text(ds, "StudyInstanceUID"),
        series_uid=raw_text(ds, "SeriesInstanceUID"),
        sop_class_uid=raw_text(ds, "SOPClassUID"),
        modality=raw_text(ds, "Modality"),
        body_part=raw_text(ds, "BodyPartExamined"),
        study_date=raw_text(ds, "StudyDate"),
        study_description=raw_text(ds, "StudyDescription"),
        accession=raw_text(ds, "AccessionNumber"),
        patient_id=raw_text(ds, "PatientID"),
        patient_name=raw_text(ds, "PatientName"),
    )


def not_a_chest_image(ds: Dataset, item: WorkItem, own_manufacturer: str) -> str | None:
    """Why the object is not for the chest classifier (stored nowhere), or None.
    ``own_manufacturer`` marks the results this node made (their heat maps come back)."""
    if "PixelData" not in ds:
        return "not an image (no pixel data)"
    if raw_text(ds, "Manufacturer") == own_manufacturer:
        return "a result XRayDesk made (heat map), not a radiograph"
    modality = (item.modality or "").upper()
    if modality and modality not in IMAGE_MODALITIES:
        return f"modality {modality} is not projection radiography"
    if not is_chest(item.body_part):  # the node's allow-list (``trust.body_part``)
        return f"body part {(item.body_part or '').upper()} is not the chest"
    return None
