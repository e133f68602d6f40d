"""The input gate and the orientation fix (issue 14): real test-split radiographs from
../shared/data, transformed in memory, and generated non-radiographs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.paths import REPO_ROOT
from tests.xrays import split_test_paths, xray_from_pixels
from xraydesk.classifier import Classifier
from xraydesk.files import sha256_file
from xraydesk.imaging.loader import load_xray
from xraydesk.imaging.xray import XRay
from xraydesk.trust.check import TrustCheck
from xraydesk.trust.codes import INVERTED, LATERAL, LOW_QUALITY, NOT_CHEST, ROTATED
from xraydesk.trust.gate import InputGate, image_statistics
from xraydesk.trust.orient import corrected


@pytest.fixture(scope="module")
def radiographs(request) -> list[XRay]:
    data = request.getfixturevalue("shared_data")
    return [load_xray(data / p) for p in split_test_paths(12)]


@pytest.fixture(scope="module")
def gate() -> InputGate:
    return InputGate.default()


def _turned(xray: XRay, turns: int) -> XRay:
    return dataclasses.replace(xray, pixels=np.ascontiguousarray(np.rot90(xray.pixels, turns)))


def _inverted(xray: XRay) -> XRay:
    return dataclasses.replace(xray, inverted=not xray.inverted)


def test_untouched_test_split_radiographs_pass(radiographs, gate):
    results = [gate.check(x) for x in radiographs]
    assert [r.codes for r in results] == [[] for _ in radiographs]


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_rotated_radiographs_are_flagged_with_the_turn(radiographs, gate, turns):
    for xray in radiographs:
        result = gate.check(_turned(xray, turns))
        assert ROTATED in result.codes and result.turns == turns
        assert result.correctable


def test_inverted_radiographs_are_flagged(radiographs, gate):
    for xray in radiographs:
        result = gate.check(_inverted(xray))
        assert result.codes == [INVERTED] and result.correctable


def test_blank_noise_and_checkerboard_are_not_chest(gate):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:256, 0:256]
    images = {
        "blank": np.full((256, 256), 255.0),
        "near-constant": 128 + rng.normal(0, 0.5, (256, 256)),
        "noise": rng.random((256, 256)) * 255,
        "checkerboard": ((yy // 32 + xx // 32) % 2) * 255.0,
    }
    for name, pixels in images.items():
        result = gate.check(xray_from_pixels(pixels, f"{name}.png"))
        assert NOT_CHEST in result.codes, name
        assert not result.correctable


def test_a_32_pixel_image_and_a_corner_crop_are_low_quality(radiographs, gate):
    xray = radiographs[0]
    small = xray.pixels[::7, ::7][:32, :32]
    assert LOW_QUALITY in gate.check(xray_from_pixels(small)).codes
    assert any("32 x 32" in w.message for w in image_statistics(np.zeros((32, 32))))
    cropped = 0
    for x in radiographs:
        h, w = x.shape
        corner = dataclasses.replace(x, pixels=np.ascontiguousarray(x.pixels[: h // 2, : w // 2]))
        cropped += bool(gate.check(corner).codes)
    assert cropped >= len(radiographs) - 1


def test_a_dicom_that_says_lateral_is_flagged(radiographs, gate):
    lateral = dataclasses.replace(
        radiographs[0],
        metadata=dataclasses.replace(radiographs[0].metadata, view_position="LL"),
    )
    assert LATERAL in gate.check(lateral).codes


def test_correction_turns_back_in_memory_and_leaves_the_file_alone(radiographs, gate):
    original = radiographs[1]
    before = sha256_file(original.path)
    turned = _inverted(_turned(original, 1))
    result = gate.check(turned)
    assert set(result.codes) == {ROTATED, INVERTED}
    fixed = corrected(turned, result)
    assert np.array_equal(fixed.pixels, original.pixels)
    assert fixed.inverted == original.inverted
    assert np.array_equal(fixed.render(), original.render())
    assert turned.pixels.shape == original.pixels.shape[::-1]  # the input is not changed
    assert any("file unchanged" in n for n in fixed.notes)
    assert sha256_file(original.path) == before
    assert gate.check(fixed).passed


def test_auto_orient_classifies_the_corrected_image_again(radiographs):
    checker = TrustCheck(Classifier.load(REPO_ROOT / "models" / "chest-3class.json", "cpu"))
    for xray in radiographs[:4]:
        upright = checker.classify(xray)
        for bad in (_turned(xray, 2), _inverted(xray)):
            plain = checker.classify(bad)
            assert plain.correction is None and plain.gate_failed
            fixed = checker.classify(bad, auto_orient=True)
            assert fixed.correction and fixed.first is not None
            assert fixed.prediction.predicted == upright.prediction.predicted
            assert fixed.prediction.probabilities == pytest.approx(
                upright.prediction.probabilities, abs=1e-6
            )


@pytest.mark.parametrize("shape", [(512, 512), (1, 600), (37, 5)])
def test_the_noise_check_is_numpys_correlation_and_leaves_the_image_alone(shape):
    """The dot-product form of the neighbour correlation (issue 28: np.corrcoef was a
    sixth of the decode stage) gives np.corrcoef's value and never writes the image."""
    from xraydesk.trust.gate import _neighbour_correlation

    rng = np.random.default_rng(3)
    for image in (rng.random(shape, dtype=np.float32), np.cumsum(rng.random(shape), 1)):
        image = (image / image.max()).astype(np.float32)
        kept = image.copy()
        a, b = image[:, :-1].ravel(), image[:, 1:].ravel()
        assert _neighbour_correlation(image) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-5)
        assert np.array_equal(image, kept)
    assert _neighbour_correlation(np.full(shape, 0.5, np.float32)) == 1.0  # flat
