"""The patient and study values a result object copies from its source, made conformant.

Real archives hold headers no writer may produce (``PatientSex`` "male", a ``StudyDate``
of "2024-01-05", a ``StudyTime`` of "12:30:00", an age of "81" without its unit, names
longer than a PN allows), and highdicom refuses them with a ``ValueError`` whose message
carries the value. So the SR and Secondary Capture are not made from the source header
itself but from a small reference dataset built here: the UIDs, and a fixed list of
patient, study and equipment attributes, each copied when valid, normalised when the
intent is unambiguous (``YYYY-MM-DD`` -> ``YYYYMMDD``, ``HH:MM:SS`` -> ``HHMMSS``, "male"
-> ``M``, "81Y" -> ``081Y``), left empty otherwise, with a note that names the attribute
and the cause, never the value. Nothing else of the source is copied.

The Patient ID is the one exception: a result filed under a changed or empty ID would
join another patient's record in the PACS, so an invalid one makes the results refused.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.datadict import dictionary_description
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from xraydesk.dicomnet.instance_files import InvalidUID, check_uid
from xraydesk.errors import XRayDeskError

UTF8 = "ISO_IR 192"
_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
# keyword -> VR (as the standard defines it), in the order the notes list them
COPIED = {
    "PatientName": "PN",
    "PatientID": "LO",
    "IssuerOfPatientID": "LO",
    "PatientBirthDate": "DA",
    "PatientSex": "CS",
    "PatientAge": "AS",
    "PatientSize": "DS",
    "PatientWeight": "DS",
    "StudyDate": "DA",
    "StudyTime": "TM",
    "AccessionNumber": "SH",
    "StudyID": "SH",
    "ReferringPhysicianName": "PN",
    "StudyDescription": "LO",
    "Manufacturer": "LO",
    "ManufacturerModelName": "LO",
    "DeviceSerialNumber": "LO",
    "InstitutionName": "LO",
    "StationName": "SH",
    "AcquisitionDate": "DA",
    "AcquisitionTime": "TM",
}
# type 2 in the Patient and General Study modules: present, possibly empty
TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
_MAX_LENGTH = {"LO": 64, "SH": 16, "CS": 16, "DS": 16}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEX = {
    "M": "M", "MALE": "M", "MAN": "M",
    "F": "F", "FEMALE": "F", "WOMAN": "F",
    "O": "O", "OTHER": "O",
}  # fmt: skip
_DS = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_TM = re.compile(r"(\d{2})((\d{2})((\d{2})(\.\d{1,6})?)?)?")


class HeaderError(XRayDeskError):
    """The source's header cannot give results a safe place in the PACS."""


@dataclass
class CleanHeader:
    """The reference dataset for highdicom and what was changed on the way."""

    dataset: Dataset
    notes: list[str] = field(default_factory=list)
    laterality: str | None = None  # "R" or "L" from the source, else None


def clean_reference(source: Dataset, path: Path) -> CleanHeader:
    """Build the reference dataset of ``source`` (read from ``path``): the UIDs as they
    are (an invalid one refuses the results), the ``COPIED`` attributes made conformant."""
    ref = Dataset()
    for keyword in _UIDS:
        what = dictionary_description(keyword)
        if not source.get(keyword):
            raise HeaderError(f"{path}: the source has no {what}; results need it")
        try:
            setattr(ref, keyword, check_uid(source.get(keyword), what))
        except InvalidUID as exc:
            raise HeaderError(f"{path}: {exc}; results need it") from exc
    notes: list[str] = []
    for keyword, vr in COPIED.items():
        if keyword not in source:
            continue
        value, cause = _clean(_raw_text(source, keyword), keyword, vr)
        if keyword == "PatientID" and cause and value is None:
            raise HeaderError(
                f"{path}: the source's Patient ID is not valid DICOM ({cause}); no results, "
                "since they would be filed under another patient"
            )
        if cause:
            what = dictionary_description(keyword)
            notes.append(f"{what} {'normalised' if value else 'not copied'}: {cause}")
        if value is not None:
            setattr(ref, keyword, value)
    for keyword in TYPE2:
        if keyword not in ref:
            setattr(ref, keyword, "")
    orientation = _orientation(source)
    if orientation:
        ref.PatientOrientation = orientation
    texts = [str(ref.get(k, "")) for k in COPIED]
    if not all(text.isascii() for text in texts):
        ref.SpecificCharacterSet = UTF8  # decoded text, whatever the source's set was
    return CleanHeader(ref, notes, _laterality(source))


def header_note(notes: list[str]) -> str:
    """One line for the SR and the console: what the results did not copy as it was."""
    return "Source header values not copied as they were: " + "; ".join(notes)


def _raw_text(source: Dataset, keyword: str) -> str | list[str] | None:
    """The value as text (a list when it holds several), None when it is not text."""
    try:
        value = source[keyword].value
    except (ValueError, TypeError, OverflowError):  # pydicom could not convert it
        return None
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("ascii").rstrip("\x00 ")
        except UnicodeDecodeError:
            return None
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return str(value)


def _clean(raw: str | list[str] | None, keyword: str, vr: str) -> tuple[str | None, str | None]:
    """(value to write or None to leave it empty, cause of the change or None)."""
    if raw is None:
        return None, "not readable as text"
    if isinstance(raw, list):
        return (None, None) if not raw else (None, "several values where one is allowed")
    text = raw.strip() if vr != "PN" else raw.rstrip()
    if not text:
        return "", None
    if _CONTROL.search(text):
        return None, "control characters"
    if "\\" in text:
        return None, "several values where one is allowed"
    return _BY_KEYWORD.get(keyword, _CLEANERS[vr])(text)


def _text(vr: str):
    def clean(text: str) -> tuple[str | None, str | None]:
        limit = _MAX_LENGTH[vr]
        if len(text) > limit:
            return None, f"longer than {limit} characters"
        return text, None

    return clean


def _person_name(text: str) -> tuple[str | None, str | None]:
    groups = text.split("=")
    if len(groups) > 3 or any(len(g.split("^")) > 5 for g in groups):
        return None, "not a DICOM person name"
    if any(len(g) > 64 for g in groups):
        return None, "longer than 64 characters"
    return text, None


def _date(text: str) -> tuple[str | None, str | None]:
    cause = "not a DICOM date (YYYYMMDD)"
    if re.fullmatch(r"\d{8}", text):
        return (text, None) if _is_date(text) else (None, cause)
    match = re.fullmatch(r"(\d{4})[-./](\d{2})[-./](\d{2})", text)  # year first: unambiguous
    if match and _is_date("".join(match.groups())):
        return "".join(match.groups()), cause
    return None, cause


def _is_date(text: str) -> bool:
    try:
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _time(text: str) -> tuple[str | None, str | None]:
    cause = "not a DICOM time (HHMMSS)"
    if _is_time(text):
        return text, None
    if re.fullmatch(r"\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?", text) and _is_time(text.replace(":", "")):
        return text.replace(":", ""), cause
    return None, cause


def _is_time(text: str) -> bool:
    match = _TM.fullmatch(text)
    if not match:
        return False
    hours, minutes, seconds = match.group(1), match.group(3), match.group(5)
    return int(hours) < 24 and int(minutes or 0) < 60 and int(seconds or 0) <= 60


def _sex(text: str) -> tuple[str | None, str | None]:
    code = _SEX.get(text.upper())
    if code == text:
        return text, None
    if code:
        return code, "not M, F or O"
    return None, "not M, F or O"


def _age(text: str) -> tuple[str | None, str | None]:
    if re.fullmatch(r"\d{3}[DWMY]", text):
        return text, None
    cause = "not a DICOM age (nnnD, nnnW, nnnM or nnnY)"
    match = re.fullmatch(r"(\d{1,3})\s*([DWMYdwmy])", text)  # the unit is there: pad it
    if match:
        return f"{int(match.group(1)):03d}{match.group(2).upper()}", cause
    return None, cause  # a bare number: days, months or years? not guessed


def _decimal(text: str) -> tuple[str | None, str | None]:
    if len(text) > 16 or not _DS.fullmatch(text):
        return None, "not a DICOM decimal"
    return text, None


_CLEANERS = {
    "PN": _person_name,
    "LO": _text("LO"),
    "SH": _text("SH"),
    "DA": _date,
    "TM": _time,
    "CS": _text("CS"),
    "AS": _age,
    "DS": _decimal,
}

_BY_KEYWORD = {"PatientSex": _sex}


def _laterality(source: Dataset) -> str | None:
    for keyword in ("Laterality", "ImageLaterality"):
        value = source.get(keyword)
        if isinstance(value, str) and value.strip().upper() in ("R", "L"):
            return value.strip().upper()
    return None


def _orientation(source: Dataset) -> list[str] | None:
    """Patient Orientation when it is two direction codes (A, P, R, L, H, F), else None."""
    try:
        value = source.get("PatientOrientation")
    except (ValueError, TypeError):
        return None
    if not isinstance(value, MultiValue | list) or len(value) != 2:
        return None
    if all(re.fullmatch(r"[APRLHF]{1,3}", str(v)) for v in value):
        return [str(v) for v in value]
    return None
