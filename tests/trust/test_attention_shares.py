"""The lung shares as weighted sums of the small map equal the resize-and-sum they replaced.

``_reference_share`` is the previous implementation, kept here as the yardstick: the class
map's floor removed, resized bilinearly to the input square, clipped at 0, and the share
of its mass inside the chest mask. The new shares must equal it on every kind of map the
check meets (random, sparse, negative floors, flat, broken) for stretched and
letterboxed models and films of several shapes, and the warnings decided from them must
be the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from xraydesk.imaging.resample import resize, resize_matrix
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.trust.attention import attention_warning, lung_share, lung_shares
from xraydesk.trust.lung_fields import chest_mask, input_chest_mask


def _reference_share(class_map: np.ndarray, mask: np.ndarray) -> float:
    cam = np.asarray(class_map, np.float32)
    with np.errstate(invalid="ignore"):
        cam = cam - cam.min()
    if not np.isfinite(cam).all() or cam.max() <= 0:
        return float("nan")
    up = np.maximum(resize(cam, *mask.shape), 0.0)
    total = float(up.sum())
    return float(up[mask].sum() / total) if total > 0 else float("nan")


@dataclass
class _MapsAsGiven:
    """What ``lung_shares`` needs of a classifier, with the maps handed over as they are
    (activations (N, classes, h, w): the map of class c is channel c), so that maps the
    head's ReLU never gives (negative floors, NaN) reach the shares too."""

    preprocessing: Preprocessing

    def class_maps(self, activations: np.ndarray, indices) -> np.ndarray:
        return np.asarray(activations)[np.arange(len(activations)), np.asarray(indices)]


def _maps(rng: np.random.Generator, count: int, side: int) -> np.ndarray:
    """Random maps of every kind, in float32 (count, side, side)."""
    maps = rng.random((count, side, side), dtype=np.float32)
    maps[::3] *= rng.random((len(maps[::3]), side, side)) > 0.7  # sparse: mostly zeros
    maps[1::5] -= 3.0  # a negative floor
    maps[2::7] = 0.0  # no mass anywhere
    maps[3::7] = 0.4  # all equal: no mass once the floor is removed
    maps[4::9, 1, 2] = np.nan
    maps[5::11, 0, 0] = np.inf
    maps[6::11, 2, 1] = -np.inf
    maps[7::13] = 0.0
    maps[7::13, 0, side - 1] = 1.0  # one hot corner: evidence outside
    return maps


PREPROCESSINGS = [
    Preprocessing(size=160),
    Preprocessing(size=160, resize="letterbox"),
    Preprocessing(size=64, resize="letterbox", channels=3),
]
SHAPES = [None, (224, 224), (350, 256), (256, 269), (2500, 2048), (100, 300), (1, 40)]


@pytest.mark.parametrize("prep", PREPROCESSINGS, ids=lambda p: f"{p.resize}{p.size}")
@pytest.mark.parametrize("side", [5, 7, 3])
def test_lung_shares_equal_the_resize_and_sum(prep: Preprocessing, side: int):
    rng = np.random.default_rng(side * 1000 + prep.size)
    maps = _maps(rng, 64, side)
    shapes = [SHAPES[n % len(SHAPES)] for n in range(len(maps))]
    classes = 3
    activations = np.zeros((len(maps), classes, side, side), np.float32)
    predicted = rng.integers(0, classes, len(maps))
    activations[np.arange(len(maps)), predicted] = maps
    probabilities = np.full((len(maps), classes), 0.1)
    probabilities[np.arange(len(maps)), predicted] = 0.8

    ours = lung_shares(_MapsAsGiven(prep), activations, probabilities, shapes)  # type: ignore[arg-type]
    reference = np.array(
        [_reference_share(m, input_chest_mask(prep, s)) for m, s in zip(maps, shapes, strict=True)]
    )
    assert ours.shape == (len(maps),)
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    assert np.isnan(reference).sum() >= 10 and (reference[np.isfinite(reference)] < 0.2).any()
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)
    for new, old in zip(ours, reference, strict=True):
        assert attention_warning(new) == attention_warning(old)
        assert attention_warning(new, 0.5) == attention_warning(old, 0.5)


def test_lung_shares_without_shapes_use_the_whole_square():
    prep = Preprocessing(size=160, resize="letterbox")
    maps = np.random.default_rng(7).random((4, 1, 5, 5), dtype=np.float32)
    probs = np.ones((4, 1))
    ours = lung_shares(_MapsAsGiven(prep), maps, probs)  # type: ignore[arg-type]
    reference = [_reference_share(m[0], chest_mask(160)) for m in maps]
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)
    assert lung_shares(_MapsAsGiven(prep), maps[:0], probs[:0]).shape == (0,)  # type: ignore[arg-type]


def test_lung_share_of_any_mask_equals_the_resize_and_sum():
    """The single-map form takes any mask shape (the benchmark's boxes, the tests' cells)."""
    rng = np.random.default_rng(11)
    for shape in ((160, 160), (64, 96), (1, 1), (5, 5), (300, 7)):
        mask = rng.random(shape) > 0.6
        for cam in _maps(rng, 14, 5):
            old, new = _reference_share(cam, mask), lung_share(cam, mask)
            assert np.isnan(old) == np.isnan(new)
            if not np.isnan(old):
                assert new == pytest.approx(old, abs=1e-5)


def test_lung_shares_of_the_test_model_equal_the_resize_and_sum(test_classifier):
    """Through a real head: ReLU'd maps of the predicted class."""
    rng = np.random.default_rng(5)
    activations = rng.standard_normal((16, test_classifier.head[0].shape[1], 5, 5)).astype(
        np.float32
    )
    probs = rng.dirichlet(np.ones(3), 16)
    ours = lung_shares(test_classifier, activations, probs)
    maps = test_classifier.class_maps(activations, probs.argmax(axis=1))
    mask = input_chest_mask(test_classifier.preprocessing)
    reference = [_reference_share(m, mask) for m in maps]
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)


def test_resize_weights_are_not_negative():
    """Why the viewer's clip at 0 needs no counterpart in the weighted sums: a map >= 0
    resized with weights >= 0 is >= 0 everywhere."""
    for source, target in ((5, 160), (7, 224), (2, 64), (160, 5)):
        assert (resize_matrix(source, target) >= 0).all()
