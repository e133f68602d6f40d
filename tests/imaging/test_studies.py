"""Issue 29 #7: a folder's DICOM files grouped into studies and series, and the prior
study of the same patient found by PatientID and an earlier StudyDate."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.dicom_factory import make_dicom
from xraydesk.errors import ImageLoadError
from xraydesk.imaging.studies import (
    StudyKeys,
    find_priors,
    group_studies,
    no_prior_reason,
    read_keys,
    scan_folder,
)

PIXELS = np.zeros((8, 8), dtype=np.uint16)


def film(path: Path, patient: str, date: str, study: str, series: str, number: int = 1) -> Path:
    extra = {"PatientID": patient, "StudyDate": date, "StudyInstanceUID": study,
             "SeriesInstanceUID": series, "InstanceNumber": number, "SeriesNumber": 1}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_dicom(path, PIXELS, extra=extra)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Patient A: today (two views in one series, plus a lateral series), 2023 and 2021;
    patient B: 2022 (not A's prior); a PNG and a broken .dcm beside them."""
    root = tmp_path / "cd"
    film(root / "a-today-pa-2.dcm", "A", "20240510", "1.1", "1.1.1", number=2)
    film(root / "a-today-pa-1.dcm", "A", "20240510", "1.1", "1.1.1", number=1)
    film(root / "a-today-lat.dcm", "A", "20240510", "1.1", "1.1.2")
    film(root / "old" / "a-2021.dcm", "A", "20210301", "1.3", "1.3.1")
    film(root / "a-2023.dcm", "A", "20230115", "1.2", "1.2.1")
    film(root / "a-same-day.dcm", "A", "20240510", "1.4", "1.4.1")
    film(root / "b-2022.dcm", "B", "20220101", "2.1", "2.1.1")
    (root / "notes.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "broken.dcm").write_bytes(b"\x00" * 10)
    return root


def test_folder_groups_into_studies_and_series(folder: Path):
    index = scan_folder(folder)
    assert [s.study_uid for s in index.studies] in (
        ["1.1", "1.4", "1.2", "2.1", "1.3"],
        ["1.4", "1.1", "1.2", "2.1", "1.3"],
    )  # newest first; 1.1 and 1.4 share a date
    today = index.study_of(folder / "a-today-lat.dcm")
    assert today is not None and today.study_uid == "1.1"
    assert [len(s.files) for s in today.series] == [2, 1]
    pa = today.series[0] if today.series[0].series_uid == "1.1.1" else today.series[1]
    assert [p.name for p in pa.files] == ["a-today-pa-1.dcm", "a-today-pa-2.dcm"]
    skipped = {p.name: cause for p, cause in index.skipped}
    assert set(skipped) == {"notes.png", "broken.dcm"}


def test_prior_is_the_same_patients_newest_earlier_study(folder: Path):
    index = scan_folder(folder)
    today = index.study_of(folder / "a-today-pa-2.dcm")
    assert today is not None
    priors = find_priors(today, index.studies)
    assert [p.study_uid for p in priors] == ["1.2", "1.3"]  # not B, not the same-day study
    assert priors[0].first_file.name == "a-2023.dcm"
    oldest = index.study_of(folder / "old" / "a-2021.dcm")
    assert oldest is not None and find_priors(oldest, index.studies) == []


def test_no_prior_without_patient_id_or_date(tmp_path: Path):
    keys = [
        StudyKeys(tmp_path / "a", "9.1", "s", patient_id="", study_date="20240101"),
        StudyKeys(tmp_path / "b", "9.2", "s", patient_id="", study_date="20230101"),
        StudyKeys(tmp_path / "c", "9.3", "s", patient_id="C", study_date=""),
        StudyKeys(tmp_path / "d", "9.4", "s", patient_id="C", study_date="20200101"),
    ]
    index = group_studies(keys)
    no_id = index.study_of(tmp_path / "a")
    no_date = index.study_of(tmp_path / "c")
    assert find_priors(no_id, index.studies) == [] and "PatientID" in no_prior_reason(no_id)
    assert find_priors(no_date, index.studies) == [] and "StudyDate" in no_prior_reason(no_date)
    assert no_prior_reason(None).startswith("the image on screen is not a DICOM study")
    assert "C" not in repr(index.studies)  # identifiers never reach a repr


def test_read_keys_names_the_file_and_the_cause(tmp_path: Path):
    no_study = tmp_path / "no-study.dcm"
    make_dicom(no_study, PIXELS, extra={"StudyInstanceUID": ""})
    with pytest.raises(ImageLoadError, match=r"no-study\.dcm.*StudyInstanceUID"):
        read_keys(no_study)
    with pytest.raises(ImageLoadError, match=r"missing\.dcm"):
        read_keys(tmp_path / "missing.dcm")


def test_real_samples_group_with_their_tagged_copy(samples_dir: Path, tmp_path: Path):
    """The SIIM sample and its re-tagged MONOCHROME1 copy share a StudyInstanceUID: one
    study of two files; a made prior of the same PatientID is found for it."""
    index = scan_folder(samples_dir / "dicom")
    siim = index.study_of(samples_dir / "dicom" / "siim-cr-jpeg-baseline.dcm")
    assert siim is not None and len(siim.files) == 2
    assert len(index.studies) == len(list((samples_dir / "dicom").glob("*.dcm"))) - 1
    assert index.skipped == []
    folder = tmp_path / "with-prior"
    folder.mkdir()
    shutil.copy(samples_dir / "dicom" / "siim-cr-jpeg-baseline.dcm", folder / "today.dcm")
    current = read_keys(folder / "today.dcm")
    film(folder / "prior.dcm", current.patient_id, "18991231", "5.5", "5.5.1")
    index = scan_folder(folder)
    today = index.study_of(folder / "today.dcm")
    assert today is not None
    assert [p.first_file.name for p in find_priors(today, index.studies)] == ["prior.dcm"]
