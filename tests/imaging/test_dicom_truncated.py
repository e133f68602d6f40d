"""A DICOM file cut short inside its encapsulated pixel data: pydicom drops the unfinished
element with only a warning, and the reader used to answer "has no pixel data (e.g. a
structured report...)", which sends a user looking for the wrong problem. Found by a
hostile-input sweep on a real JPEG-baseline CR cut to two thirds."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import RLELossless

from tests.dicom_factory import make_dicom
from xraydesk.errors import ImageLoadError
from xraydesk.imaging import load_xray


def _rle_dicom(path: Path) -> Path:
    pixels = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 4096).astype(np.uint16)
    return make_dicom(path, pixels, bits_stored=12, transfer_syntax=RLELossless)


def _load_error(path: Path) -> str:
    with warnings.catch_warnings():  # pydicom warns about the missing delimiter, by design
        warnings.simplefilter("ignore")
        with pytest.raises(ImageLoadError) as err:
            load_xray(path)
    return str(err.value)


@pytest.mark.parametrize("keep", [0.6, 0.95])
def test_file_cut_inside_encapsulated_pixel_data(tmp_path: Path, keep: float) -> None:
    whole = _rle_dicom(tmp_path / "whole.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[: int(len(whole) * keep)])
    message = _load_error(cut)
    assert "cut.dcm" in message
    assert "ends inside its pixel data" in message and "no pixel data" not in message


def test_file_without_pixel_data_still_says_so(tmp_path: Path) -> None:
    from pydicom import dcmread

    path = _rle_dicom(tmp_path / "sr.dcm")
    ds = dcmread(path)
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    assert "has no pixel data" in _load_error(path)
