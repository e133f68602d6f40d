"""A DICOM whose patient values are hostile (terminal escapes, a forged table row, a
birth date that is not a date), and the check that none of them reaches a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.dicom_factory import make_dicom

ESC_ID = "\x1b]0;PWNED-ID-7731\x07\x1b[2J\nFORGED\tROW"
FAKE_NAME = "Qwertzuiop^Yxcvbnm"
FAKE_ID_MARK = "PWNED-ID-7731"
FAKE_BIRTH = "19AB0731"  # not a date either: pydicom's check would quote it


def logged(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


def hostile_patient(path: Path) -> Path:
    extra = {"PatientID": ESC_ID, "PatientName": FAKE_NAME, "PatientBirthDate": FAKE_BIRTH}
    extra["AccessionNumber"] = "ACC\x1b[31m-9931"
    with pydicom.config.disable_value_validation():  # the writer is not the one under test
        return make_dicom(path, np.zeros((64, 64), np.uint16), modality="DX", extra=extra)


def assert_no_identifier(caplog: pytest.LogCaptureFixture) -> None:
    for message in logged(caplog, logging.DEBUG):
        for secret in (FAKE_ID_MARK, "Qwertz", "9931", FAKE_BIRTH):
            assert secret not in message, message
