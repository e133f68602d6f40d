"""Output targets that cannot be written are refused before anything is classified, at
every option that writes: found by a hostile-input sweep. ``--csv`` naming a folder ran
the whole folder and then failed ("Is a directory"), and ``--dicom-out`` naming a file
classified everything and then said "SR and heat map of 0 image(s)" without a cause."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.batch_helpers import write_png
from tests.dicom_factory import make_dicom
from xraydesk.cli import main
from xraydesk.files import SideFile


def test_csv_naming_a_folder_fails_before_classifying(tmp_path, test_model_path, capsys):
    films = tmp_path / "films"
    write_png(films / "a.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["classify", str(films), "--model", str(test_model_path), "--csv", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert f"{out}: could not write the CSV file" in captured.err
    assert "nothing was classified" in captured.err and "a.png" not in captured.out
    assert list(out.iterdir()) == []  # no side file left behind


def test_dicom_out_naming_a_file_fails_before_classifying(tmp_path, test_model_path, capsys):
    pixels = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)
    (tmp_path / "films").mkdir()
    film = make_dicom(tmp_path / "films" / "a.dcm", pixels, bits_stored=12)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("in the way")
    argv = ["classify", str(film), "--model", str(test_model_path), "--dicom-out", str(blocker)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert f"--dicom-out {blocker}: cannot write there (a file is in the way" in captured.err
    assert "nothing was classified" in captured.err and "a.dcm" not in captured.out
    assert blocker.read_text() == "in the way"


def test_side_file_refuses_a_folder_target_at_once(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        SideFile(tmp_path)
    assert list(tmp_path.iterdir()) == []
