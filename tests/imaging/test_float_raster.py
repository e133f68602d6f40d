"""32-bit float TIFFs (Pillow mode "F"): read, with NaN and infinities replaced by the
finite range's ends, never reported as a damaged file.

Found by a hostile-input sweep: Pillow's array view of a mode-F image is read-only, so
replacing a NaN in place raised "assignment destination is read-only", which the loader
reported as "damaged or truncated TIFF file" for a valid image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xraydesk.errors import ImageLoadError
from xraydesk.imaging import load_xray


def _float_tiff(path: Path, values: np.ndarray) -> Path:
    Image.fromarray(values.astype(np.float32), mode="F").save(path, format="TIFF")
    return path


def _ramp() -> np.ndarray:
    return np.linspace(-3.0, 5.0, 64 * 48, dtype=np.float32).reshape(64, 48)


def test_float_tiff_keeps_its_values(tmp_path: Path) -> None:
    xray = load_xray(_float_tiff(tmp_path / "f.tif", _ramp()))
    np.testing.assert_array_equal(xray.pixels, _ramp())
    assert xray.bits_stored == 32
    assert xray.window.center == pytest.approx(1.0) and xray.window.width == pytest.approx(8.0)


@pytest.mark.parametrize(("bad", "replaced_by"), [(np.nan, -3.0), (np.inf, 5.0), (-np.inf, -3.0)])
def test_non_finite_float_pixels_take_the_finite_range(
    tmp_path: Path, bad: float, replaced_by: float
) -> None:
    values = _ramp()
    values[10, 20] = bad
    xray = load_xray(_float_tiff(tmp_path / "f.tif", values))
    assert np.isfinite(xray.pixels).all()
    assert xray.pixels[10, 20] == replaced_by
    assert np.isfinite(xray.render()).all()


def test_float_tiff_without_a_finite_pixel_is_refused(tmp_path: Path) -> None:
    path = _float_tiff(tmp_path / "nan.tif", np.full((32, 32), np.nan))
    with pytest.raises(ImageLoadError) as err:
        load_xray(path)
    assert "nan.tif" in str(err.value) and "no finite pixel values" in str(err.value)
