"""pydicom's validation warning quotes the value it read ("Invalid value for VR DA:
'19520101'."): a birth date, a Study Instance UID or an ID with a stray character went
into the log file as written. Found by a hostile-input sweep (the UID of a study, on
opening it in the viewer and writing its SR). The scrubber now removes the quoted value,
and a real classify of such a file leaves none of them in the log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import config, dcmread

from tests.cli_child import run_cli
from tests.dicom_factory import make_dicom
from xraydesk import logs


@pytest.mark.parametrize(
    "message",
    [
        "Invalid value for VR UI: '1.2.SECRET9.abc'. Please see <https://dicom.nema.org>",
        "Invalid value for VR DA: 'SECRET9'.",
        "Invalid value for VR LO: b'SECRET9\\x01ID'.",
        'Invalid value for VR DA: "SECRET9 it\'s".',
        "Invalid value for VR AS: SECRET9.",
    ],
)
def test_scrub_removes_the_quoted_value(message: str) -> None:
    cleaned = logs.scrub(message)
    assert "SECRET9" not in cleaned and cleaned.startswith("Invalid value for VR ")
    assert logs.REMOVED in cleaned


def test_scrub_keeps_messages_without_a_value() -> None:
    text = "The value length (28) exceeds the maximum length of 16 allowed for VR SH."
    assert logs.scrub(text) == text


def test_a_classified_file_leaves_no_invalid_value_in_the_log(tmp_path: Path) -> None:
    """In a fresh interpreter, so stderr is what a terminal (or a service's journal) gets,
    not what pytest's warning capture keeps."""
    pixels = (np.arange(256 * 256).reshape(256, 256) % 4096).astype(np.uint16)
    (tmp_path / "in").mkdir()
    path = make_dicom(tmp_path / "in" / "film.dcm", pixels, bits_stored=12)
    ds = dcmread(path)
    ds.PatientBirthDate = "SECRETBIRTH"
    ds.StudyInstanceUID = "1.2.SECRETUID.7"
    ds.PatientAge = "SECRETAGE"
    saved = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        ds.save_as(path, enforce_file_format=True)
    finally:
        config.settings.writing_validation_mode = saved
    done = run_cli(tmp_path, "classify", "--dicom-out", str(tmp_path / "sr"), str(path))
    assert done.code in (0, 1), done.stderr
    text = logs.log_file().read_text(encoding="utf-8")
    assert "Invalid value for VR" in text  # the warning was logged, without its value
    assert "SECRET" not in text, text
    assert "SECRET" not in done.stderr and "SECRET" not in done.stdout, done.stderr
