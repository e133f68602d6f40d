"""A folder's (or the PACS worklist's) DICOM files as studies and series, and the priors.

Reading rooms hang the previous film of the same patient beside today's. That prior is
found here from the headers alone: same PatientID, an earlier StudyDate, another
StudyInstanceUID. Files are grouped by StudyInstanceUID, then SeriesInstanceUID.
Only headers are read (pixel data is skipped), so a folder of hundreds of films is
grouped in moments. PatientID is identifying: it is compared, never logged or put in a
repr.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from xraydesk.errors import ImageLoadError
from xraydesk.imaging.discover import iter_images

_HEADER_TAGS = [
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "SeriesDescription",
    "SeriesNumber",
    "InstanceNumber",
    "Modality",
    "ViewPosition",
]


@dataclass(frozen=True)
class StudyKeys:
    """The header fields one file contributes to the grouping."""

    path: Path
    study_uid: str
    series_uid: str = ""
    patient_id: str = ""  # identifying: never logged
    study_date: str = ""  # YYYYMMDD
    study_time: str = ""
    study_description: str = ""
    series_description: str = ""
    series_number: int | None = None
    instance_number: int | None = None
    modality: str = ""
    view_position: str = ""

    def __repr__(self) -> str:
        return f"StudyKeys(path={self.path.name!r}, date={self.study_date!r})"


@dataclass(frozen=True)
class SeriesGroup:
    series_uid: str
    number: int | None
    modality: str
    description: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class StudyGroup:
    study_uid: str
    patient_id: str
    study_date: str
    study_time: str
    description: str
    series: tuple[SeriesGroup, ...]

    def __repr__(self) -> str:
        return f"StudyGroup(date={self.study_date!r}, series={len(self.series)})"

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(path for series in self.series for path in series.files)

    @property
    def first_file(self) -> Path:
        """The file to show for the study: first instance of its first series."""
        return self.series[0].files[0]

    @property
    def modalities(self) -> str:
        return "/".join(sorted({s.modality for s in self.series if s.modality}))


@dataclass
class StudyIndex:
    """Studies found, newest first, and the files that could not be grouped (with why)."""

    studies: list[StudyGroup]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def study_of(self, path: str | os.PathLike[str]) -> StudyGroup | None:
        target = Path(path).absolute()
        for study in self.studies:
            if any(f.absolute() == target for f in study.files):
                return study
        return None


def read_keys(path: str | os.PathLike[str]) -> StudyKeys:
    """The grouping fields of one DICOM file (header only). ImageLoadError names the cause."""
    path = Path(path)
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as exc:
        raise ImageLoadError(path, f"not a readable DICOM header ({type(exc).__name__})") from exc
    study_uid = _text(ds, "StudyInstanceUID")
    if not study_uid:
        raise ImageLoadError(path, "no StudyInstanceUID: not a DICOM image of a study")
    return StudyKeys(
        path=path,
        study_uid=study_uid,
        series_uid=_text(ds, "SeriesInstanceUID"),
        patient_id=_text(ds, "PatientID"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        series_description=_text(ds, "SeriesDescription"),
        series_number=_int(ds, "SeriesNumber"),
        instance_number=_int(ds, "InstanceNumber"),
        modality=_text(ds, "Modality"),
        view_position=_text(ds, "ViewPosition"),
    )


def scan_folder(folder: str | os.PathLike[str], recursive: bool = True) -> StudyIndex:
    """Group every DICOM file under ``folder``; other files are listed as skipped."""
    keys: list[StudyKeys] = []
    skipped: list[tuple[Path, str]] = []
    for path in iter_images([Path(folder)], recursive=recursive):
        try:
            keys.append(read_keys(path))
        except ImageLoadError as exc:
            skipped.append((path, exc.cause))
    index = group_studies(keys)
    index.skipped = skipped
    return index


def group_studies(keys: Iterable[StudyKeys]) -> StudyIndex:
    """Studies by StudyInstanceUID, series by SeriesInstanceUID, instances in order."""
    by_study: dict[str, list[StudyKeys]] = {}
    for key in keys:
        by_study.setdefault(key.study_uid, []).append(key)
    studies = [_study(members) for members in by_study.values()]
    studies.sort(key=lambda s: (s.study_date, s.study_time, s.study_uid), reverse=True)
    return StudyIndex(studies)


def _study(members: list[StudyKeys]) -> StudyGroup:
    by_series: dict[str, list[StudyKeys]] = {}
    for key in members:
        by_series.setdefault(key.series_uid, []).append(key)
    series = []
    for uid, files in by_series.items():
        files.sort(key=lambda k: (k.instance_number is None, k.instance_number or 0, k.path.name))
        head = files[0]
        series.append(
            SeriesGroup(
                uid,
                head.series_number,
                head.modality,
                head.series_description or head.view_position,
                tuple(k.path for k in files),
            )
        )
    series.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
    head = members[0]
    return StudyGroup(
        study_uid=head.study_uid,
        patient_id=next((k.patient_id for k in members if k.patient_id), ""),
        study_date=next((k.study_date for k in members if k.study_date), ""),
        study_time=next((k.study_time for k in members if k.study_time), ""),
        description=next((k.study_description for k in members if k.study_description), ""),
        series=tuple(series),
    )


def valid_date(value: str) -> bool:
    return len(value) == 8 and value.isdigit()


def find_priors(current: StudyGroup, studies: Iterable[StudyGroup]) -> list[StudyGroup]:
    """Earlier studies of the same patient, newest first.

    Same non-empty PatientID, a valid StudyDate strictly before the current one (a study
    the same day is a companion, not a prior), and another StudyInstanceUID. Without a
    PatientID or a StudyDate on the current study there is no prior to find.
    """
    if not current.patient_id or not valid_date(current.study_date):
        return []
    priors = {
        s.study_uid: s
        for s in studies
        if s.patient_id == current.patient_id
        and s.study_uid != current.study_uid
        and valid_date(s.study_date)
        and s.study_date < current.study_date
    }
    return sorted(priors.values(), key=lambda s: (s.study_date, s.study_time), reverse=True)


def no_prior_reason(current: StudyGroup | None) -> str:
    """Why no prior can be looked for, or "" when it can."""
    if current is None:
        return "the image on screen is not a DICOM study (no StudyInstanceUID)"
    if not current.patient_id:
        return "the study has no PatientID to match a prior by"
    if not valid_date(current.study_date):
        return "the study has no StudyDate to order studies by"
    return ""


def _text(ds, keyword: str) -> str:
    value = ds.get(keyword)
    return str(value).strip() if value is not None else ""


def _int(ds, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
