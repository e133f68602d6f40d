"""A DICOM file's elements as rows for the tag browser (no Qt here).

Every element is listed (tag, keyword, VR, value), sequences with their items nested,
the pixel data as its size only. Identifying elements (every PN, the patient's IDs,
birth date, address, the accession number and a few others) are flagged so the browser
masks them unless the reader has asked to see patient data.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from xraydesk.errors import ImageLoadError

MAX_VALUE_CHARS = 160
MASK = "•••••• hidden"
IDENTIFYING = frozenset(
    {
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientBirthDate",
        "PatientBirthName",
        "PatientMotherBirthName",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "IssuerOfPatientID",
        "AccessionNumber",
        "MedicalRecordLocator",
        "InstitutionAddress",
        "ReferringPhysicianAddress",
        "MilitaryRank",
        "EthnicGroup",
        "PatientComments",
    }
)
_BULK = frozenset({"PixelData", "FloatPixelData", "DoubleFloatPixelData", "OverlayData"})


@dataclass
class TagRow:
    tag: str  # "(0010,0010)"
    keyword: str  # "PatientName" ("" for private or unknown elements)
    name: str  # "Patient's Name", "Private tag data"
    vr: str
    value: str
    identifying: bool = False
    children: list[TagRow] = field(default_factory=list)

    def shown_value(self, reveal: bool) -> str:
        return MASK if self.identifying and not reveal and self.value else self.value

    def __repr__(self) -> str:  # values may identify: keep them out of reprs
        return f"TagRow({self.tag} {self.keyword})"


def read_tag_rows(path: str | os.PathLike[str]) -> list[TagRow]:
    """The file meta and dataset elements of a DICOM file, in tag order."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # junk read as elements warns; the check below says why
            warnings.simplefilter("ignore")
            ds = dcmread(path, force=True, defer_size=4096)
            rows = dataset_rows(ds.file_meta) if getattr(ds, "file_meta", None) else []
            rows += dataset_rows(ds)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        cause = f"cannot list the DICOM elements ({type(exc).__name__})"
        raise ImageLoadError(path, cause) from exc
    if not any(row.keyword and row.tag[1:5] != "0002" and row.vr != "UN" for row in rows):
        raise ImageLoadError(path, "no DICOM elements: not a DICOM file")
    return rows


def dataset_rows(ds: Dataset, identifying_parent: bool = False) -> list[TagRow]:
    rows = []
    for element in ds:
        keyword = element.keyword or ""
        identifying = identifying_parent or element.VR == "PN" or keyword in IDENTIFYING
        row = TagRow(
            tag=f"({element.tag.group:04X},{element.tag.element:04X})",
            keyword=keyword,
            name=element.name,
            vr=str(element.VR),
            value="",
            identifying=identifying,
        )
        if element.VR == "SQ":
            items = element.value or []
            row.value = f"{len(items)} item{'s' if len(items) != 1 else ''}"
            for number, item in enumerate(items, start=1):
                child = TagRow("", "", f"Item {number}", "", "", identifying)
                child.children = dataset_rows(item, identifying)
                row.children.append(child)
        else:
            row.value = _value_text(element)
        rows.append(row)
    return rows


def _value_text(element) -> str:
    if element.keyword in _BULK or element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        if element.is_undefined_length:
            return "(binary, encapsulated)"
        try:
            return f"(binary, {len(element.value or b'')} bytes)"
        except Exception:  # a deferred value the file no longer holds
            return "(binary)"
    try:
        value = element.repval if element.VM > 16 else str(element.value)
    except Exception:  # a malformed value must not hide the others
        value = "(unreadable value)"
    value = value.replace("\r", " ").replace("\n", " ")
    return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"


def filter_rows(rows: list[TagRow], text: str, reveal: bool = False) -> list[TagRow]:
    """Rows whose tag, keyword, name or shown value contains ``text`` (case-insensitive); a
    sequence is kept when one of its items matches. Masked values are not searched."""
    needle = text.strip().lower()
    if not needle:
        return rows
    kept = []
    for row in rows:
        children = filter_rows(row.children, text, reveal)
        haystack = f"{row.tag} {row.keyword} {row.name} {row.shown_value(reveal)}".lower()
        if needle in haystack or children:
            kept.append(
                TagRow(row.tag, row.keyword, row.name, row.vr, row.value, row.identifying, children)
            )
    return kept
