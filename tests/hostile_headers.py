"""A DICOM with a fake patient, for the tests that check no value of a patient reaches a
console line, a log or a note (the DICOM results, the node's ``--send-results``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.dicom_factory import make_dicom

FAKE_NAME = "Quixotezz^Hostilia"
FAKE_ID = "HOSTILE-ID-7731"
FAKE_ACCESSION = "ACC-HOST-42"
# what no console line, log or note may show
SECRETS = ("Quixotezz", "Hostilia", FAKE_ID, FAKE_ACCESSION, "1901", "03/02")


def hostile_dicom(path: Path, changes: dict[str, str], seed: int = 0) -> Path:
    """A small DX chest image with the fake patient, then ``changes`` on top."""
    pixels = (np.random.default_rng(seed).random((96, 80)) * 4000).astype(np.uint16)
    extra = {
        "PatientName": FAKE_NAME,
        "PatientID": FAKE_ID,
        "PatientBirthDate": "19010203",
        "PatientSex": "F",
        "AccessionNumber": FAKE_ACCESSION,
        "StudyTime": "101500",
        **changes,
    }
    return make_dicom(path, pixels, extra=extra)


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} was shown"
