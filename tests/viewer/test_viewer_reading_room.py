"""Issue 29 #7, Qt-free rules: view rotation/flip, the cardiothoracic ratio, the
four-corner text model (identity hidden unless asked) and the DICOM tag rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.dicom_factory import make_dicom
from xraydesk.errors import ImageLoadError
from xraydesk.imaging.tags import MASK, filter_rows, read_tag_rows
from xraydesk.imaging.xray import ImageMetadata, PatientInfo
from xraydesk.viewer.corners import HIDDEN_TEXT, corner_texts
from xraydesk.viewer.ctr import ctr, ctr_text
from xraydesk.viewer.orientation import Orientation

ALL = [Orientation(r, m) for r in (0, 90, 180, 270) for m in (False, True)]


def test_rotation_turns_clockwise_and_four_turns_are_identity():
    grid = np.arange(6).reshape(2, 3)  # [[0 1 2], [3 4 5]]
    turned = Orientation(90).apply(grid)
    assert turned.tolist() == [[3, 0], [4, 1], [5, 2]]  # first row becomes the right column
    o = Orientation()
    for _ in range(4):
        o = o.rotated(90)
    assert o.is_identity
    assert Orientation().rotated(-90) == Orientation(270)
    with pytest.raises(ValueError):
        Orientation(45)


def test_screen_flips_mirror_what_is_shown_whatever_the_rotation():
    grid = np.arange(12).reshape(3, 4)
    for start in ALL:
        shown = start.apply(grid)
        assert np.array_equal(start.flipped_horizontal().apply(grid), shown[:, ::-1])
        assert np.array_equal(start.flipped_vertical().apply(grid), shown[::-1, :])
        assert start.flipped_horizontal().flipped_horizontal() == start


@pytest.mark.parametrize("orientation", ALL)
def test_points_map_like_the_pixels_and_back(orientation):
    rows, cols = 3, 5
    grid = np.arange(rows * cols).reshape(rows, cols)
    shown = orientation.apply(grid)
    assert shown.shape == orientation.displayed_shape((rows, cols))
    for r in range(rows):
        for c in range(cols):
            # the centre of pixel (c, r) lands on the centre of the shown pixel holding it
            x, y = orientation.to_screen((c + 0.5, r + 0.5), (rows, cols))
            assert shown[int(y), int(x)] == grid[r, c]
            assert orientation.to_image((x, y), (rows, cols)) == pytest.approx((c + 0.5, r + 0.5))


def test_orientation_label():
    assert Orientation().label() == ""
    assert Orientation(90, True).label() == "Rotated 90°, mirrored"
    assert Orientation(0, True).label() == "Mirrored"


def test_ctr_ratio_in_mm_with_non_square_pixels_and_in_px_without():
    heart = [(100.0, 50.0), (200.0, 50.0)]  # 100 px wide
    thorax = [(50.0, 60.0), (300.0, 60.0)]  # 250 px wide
    result = ctr(heart + thorax, (0.2, 0.1))  # columns 0.1 mm
    assert result.unit == "mm"
    assert result.cardiac == pytest.approx(10.0)
    assert result.ratio == pytest.approx(0.4)
    # a vertical heart line on non-square pixels: physical lengths, not pixel counts
    tall = ctr([(0, 0), (0, 100), (0, 0), (200, 0)], (0.2, 0.1))
    assert tall.ratio == pytest.approx(1.0)
    assert ctr(heart + thorax, None).unit == "px"
    assert ctr_text(heart + thorax, None).startswith("CTR 0.40\nheart 100 px / thorax 250 px")


def test_ctr_text_while_drawing_and_at_the_reference():
    heart = [(0.0, 0.0), (120.0, 0.0)]
    thorax = [(0.0, 10.0), (200.0, 10.0)]
    assert ctr_text(heart[:1], None) == ""
    assert ctr_text(heart, (0.5, 0.5)) == "heart 60.0 mm"
    enlarged = ctr_text(heart + thorax, (0.5, 0.5), view="PA")
    assert enlarged.startswith("CTR 0.60") and "above 0.50" in enlarged
    assert "AP film" in ctr_text(heart + thorax, (0.5, 0.5), view="AP")
    assert "wider than zero" in ctr_text([*heart, (5, 5), (5, 5)], None)
    with pytest.raises(ValueError):
        ctr(heart, None)


def _meta(**kw) -> ImageMetadata:
    base = dict(path=Path("a.dcm"), format="DICOM", modality="CR", view_position="PA",
                body_part="CHEST", study_date="20240102", pixel_spacing=(0.2, 0.2))  # fmt: skip
    return ImageMetadata(**{**base, **kw})


def test_corners_hide_identity_unless_asked():
    patient = PatientInfo(name="Doe^Jane", patient_id="P-77", birth_date="19700101")
    hidden = corner_texts(_meta(), patient, (200, 100), Orientation())
    text = "\n".join(hidden.top_right + hidden.bottom_right)
    assert "Doe" not in text and "P-77" not in text and "1970" not in text
    assert hidden.top_right[0] == HIDDEN_TEXT
    assert "Study 2024-01-02" in hidden.top_right and "CR PA" in hidden.top_right
    assert hidden.bottom_right == ("100 × 200 px", "Spacing 0.2 × 0.2 mm")
    shown = corner_texts(_meta(), patient, (200, 100), Orientation(90), show_identity=True)
    assert shown.top_right[:3] == ("Doe, Jane", "ID P-77", "Born 1970-01-01")
    assert shown.bottom_right[0] == "Rotated 90°"
    nobody = corner_texts(_meta(pixel_spacing=None), PatientInfo(), (10, 10), Orientation())
    assert HIDDEN_TEXT not in nobody.top_right
    assert "lengths in px" in nobody.bottom_right[-1]
    assert corner_texts(None, None, None, Orientation()).top_right == ()


def test_tag_rows_mask_identifying_values(tmp_path):
    pixels = np.zeros((8, 8), dtype=np.uint16)
    seq_item = {"OtherPatientIDsSequence": []}
    path = make_dicom(tmp_path / "t.dcm", pixels, extra={"AccessionNumber": "ACC-9", **seq_item})
    rows = read_tag_rows(path)
    by_keyword = {row.keyword: row for row in rows}
    assert by_keyword["PatientName"].shown_value(reveal=False) == MASK
    assert by_keyword["PatientName"].shown_value(reveal=True) == "Doe^Jane"
    assert by_keyword["AccessionNumber"].shown_value(False) == MASK
    assert by_keyword["Modality"].shown_value(False) == "DX"
    assert by_keyword["PixelData"].value.startswith("(binary, 128 bytes")
    assert by_keyword["TransferSyntaxUID"].tag == "(0002,0010)"
    # searching never finds a masked value
    assert filter_rows(rows, "Doe", reveal=False) == []
    assert [r.keyword for r in filter_rows(rows, "Doe", reveal=True)] == ["PatientName"]
    assert [r.keyword for r in filter_rows(rows, "0018,5101")] == ["ViewPosition"]


def test_tag_rows_nest_sequences_and_mask_inside_identifying_ones(tmp_path):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.PatientID = "OTHER-1"
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3"
    extra = {"OtherPatientIDsSequence": [item], "ReferencedImageSequence": [ref, ref]}
    rows = read_tag_rows(make_dicom(tmp_path / "s.dcm", np.zeros((4, 4), np.uint8), extra=extra))
    by_keyword = {row.keyword: row for row in rows}
    refs = by_keyword["ReferencedImageSequence"]
    assert refs.value == "2 items" and len(refs.children) == 2
    assert refs.children[0].children[0].shown_value(False) == "1.2.3"
    other = by_keyword["OtherPatientIDsSequence"].children[0].children[0]
    assert other.shown_value(False) == MASK


def test_tag_rows_of_real_samples_and_of_a_non_dicom_file(samples_dir, tmp_path):
    for path in sorted((samples_dir / "dicom").glob("*.dcm")):
        rows = read_tag_rows(path)
        keywords = {row.keyword for row in rows}
        assert {"Rows", "Columns", "PixelData"} <= keywords, path.name
        ids = [r for r in rows if r.keyword == "PatientID" and r.value]
        assert all(r.shown_value(False) == MASK for r in ids)
    text = tmp_path / "notes.dcm"
    text.write_text("not a dicom file at all")
    with pytest.raises(ImageLoadError, match=r"notes\.dcm"):
        read_tag_rows(text)
