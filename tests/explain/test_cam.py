"""The class activation map: equal to the grad-cam package's Grad-CAM on real test images
of the bundled model, from the one forward pass that also gives the probabilities and
the OOD features, with no hook left behind (memory over 200 calls: test_gradcam's
test_hooks_released_and_no_memory_growth_over_200_calls, for both methods)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.model_factory import hook_count, make_test_model
from tests.paths import REPO_ROOT
from tests.xrays import synthetic_xray
from xraydesk.classifier import Classifier
from xraydesk.explain import (
    DEFAULT_METHOD,
    METHODS,
    class_activation_map,
    grad_cam,
    heat_map,
    known_method,
    method_label,
)
from xraydesk.imaging import load_xray
from xraydesk.imaging.xray import XRay
from xraydesk.trainer.split import read_split
from xraydesk.trust.check import TrustCheck

BUNDLED = REPO_ROOT / "models" / "chest-3class.json"
IMAGES = 12  # real test-split images compared (the issue asks for at least 10)
MIN_CORRELATION = 0.99


@contextmanager
def counted_forwards(classifier: Classifier) -> Iterator[list[int]]:
    """Count forward passes: calls of the torch network (a pre-hook) plus calls of the
    exported runtime where the classifier runs on one (``classifier.runtime``); undone
    on exit."""
    calls = [0]

    def count(_module: torch.nn.Module, _args: object) -> None:
        calls[0] += 1

    hook = classifier.network.register_forward_pre_hook(count)
    runtime = getattr(classifier, "runtime", None)
    if runtime is not None:
        run = runtime.run

        def counting_run(*args: object, **kwargs: object):
            calls[0] += 1
            return run(*args, **kwargs)

        runtime.run = counting_run
    try:
        yield calls
    finally:
        hook.remove()
        if runtime is not None:
            del runtime.run  # the class's method again


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def bundled() -> Classifier:
    return Classifier.load(BUNDLED, device="cpu")


@pytest.fixture(scope="module")
def test_images(shared_data: Path) -> list[XRay]:
    """A fixed random sample of the bundled model's own test split, every pool in it."""
    samples, splits = read_split(BUNDLED.with_suffix("") / "split.csv")
    test = [s for s, split in zip(samples, splits, strict=True) if split == "test"]
    rng = np.random.default_rng(13)
    chosen = [test[i] for i in rng.choice(len(test), size=IMAGES, replace=False)]
    return [load_xray(shared_data / s.path) for s in chosen]


# -- the same map as Grad-CAM -------------------------------------------------------------
@pytest.mark.slow
def test_cam_equals_grad_cam_on_real_test_images(bundled: Classifier, test_images: list[XRay]):
    """For the predicted class and for another one, on every image: correlation >= 0.99."""
    worst: dict[str, float] = {}
    for xray in test_images:
        cam = class_activation_map(bundled, xray)
        reference = grad_cam(bundled, xray)
        assert cam.class_id == reference.class_id  # both explain the top class
        other = next(cid for cid in bundled.class_ids if cid != cam.class_id)
        cam_other = class_activation_map(bundled, xray, other)
        reference_other = grad_cam(bundled, xray, other)
        assert cam.heatmap.shape == reference.heatmap.shape == xray.shape
        for key, a, b in (("predicted", cam, reference), ("other", cam_other, reference_other)):
            r = _correlation(a.heatmap, b.heatmap)
            worst[key] = min(worst.get(key, 1.0), r)
            assert r >= MIN_CORRELATION, (xray.path.name, key, r)
    assert set(worst) == {"predicted", "other"}


def test_cam_equals_grad_cam_with_letterbox_geometry(tmp_path: Path, monkeypatch):
    """The letterbox crop and the resize to the source are the same code for both maps.

    In fp32: a random network's class evidence is nearly flat, so bf16 rounding of its
    activations would move the map more than the geometry under test (the real model's
    maps are compared in the CPU's own precision above)."""
    monkeypatch.setenv("XRAYDESK_PRECISION", "fp32")
    card = make_test_model(tmp_path, name="lb", resize="letterbox")
    classifier = Classifier.load(card, device="cpu")
    xray = synthetic_xray(shape=(120, 300))
    cam = class_activation_map(classifier, xray, "covid19")
    reference = grad_cam(classifier, xray, "covid19")
    assert cam.heatmap.shape == (120, 300) and cam.heatmap.dtype == np.float32
    assert cam.heatmap.min() >= 0.0 and cam.heatmap.max() <= 1.0
    assert _correlation(cam.heatmap, reference.heatmap) >= MIN_CORRELATION


# -- one forward pass ---------------------------------------------------------------------
def test_forward_outputs_are_one_consistent_pass(test_classifier: Classifier):
    tensor = test_classifier.preprocess(synthetic_xray())[None]
    with counted_forwards(test_classifier) as calls:
        out = test_classifier.forward(tensor)
    assert calls[0] == 1
    assert out.activations is not None and out.activations.ndim == 4
    # the features are the activations' global average: the stage CAM reads is the last one
    # (pooled in bf16 where the CPU runs bf16: within its rounding, 2^-8 relative)
    bf16 = test_classifier.device.autocast_dtype == torch.bfloat16
    tolerance = {"rtol": 2**-7, "atol": 2**-7} if bf16 else {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(out.features, out.activations.mean(axis=(2, 3)), **tolerance)
    logits, features = test_classifier.logits_and_features(tensor)
    np.testing.assert_allclose(logits, out.logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features, out.features, rtol=1e-5, atol=1e-6)
    assert test_classifier.forward(tensor, activations=False).activations is None


def test_probabilities_ood_and_cam_from_one_forward(bundled: Classifier, test_images: list[XRay]):
    """What the viewer does: TrustCheck classifies (gate, OOD) and the CAM reuses its pass."""
    xray = test_images[0]
    check = TrustCheck.of(bundled)
    with counted_forwards(bundled) as calls:
        checked = check.classify(xray, activations=True)
        cams = [heat_map(bundled, xray, cid, outputs=checked.forward) for cid in bundled.class_ids]
    assert calls[0] == 1
    assert checked.ood_score is not None  # the bundled card has OOD statistics
    assert checked.forward is not None and checked.forward.activations is not None
    assert cams[0].method == DEFAULT_METHOD == "cam"
    predicted = bundled.class_ids.index(checked.prediction.predicted)
    np.testing.assert_array_equal(
        cams[predicted].heatmap, heat_map(bundled, xray, outputs=checked.forward).heatmap
    )
    assert checked.prediction.probabilities == bundled.predict(xray).probabilities
    # without the activations the result holds only the small tensors
    assert check.classify(xray).forward.activations is None


def test_cam_without_a_given_pass_runs_exactly_one(test_classifier: Classifier):
    with counted_forwards(test_classifier) as calls:
        result = class_activation_map(test_classifier, synthetic_xray())
    assert calls[0] == 1
    assert result.class_id == test_classifier.predict(synthetic_xray()).predicted


# -- the method registry ------------------------------------------------------------------
def test_methods_registry_and_dispatch(test_classifier: Classifier):
    assert list(METHODS) == ["cam", "gradcam", "gradcam++"] and DEFAULT_METHOD == "cam"
    assert [m.backward for m in METHODS.values()] == [False, True, True]
    assert method_label("gradcam++") == "Grad-CAM++"
    assert known_method("gradcam") == "gradcam" and known_method("score-cam") == "cam"
    assert known_method(None) == "cam"
    xray = synthetic_xray(shape=(90, 110))
    for key in METHODS:
        result = heat_map(test_classifier, xray, "pneumonia", key)
        assert result.method == key and result.class_id == "pneumonia"
        assert result.heatmap.shape == (90, 110)
    with pytest.raises(ValueError, match="unknown heat-map method"):
        heat_map(test_classifier, xray, method="score-cam")
    with pytest.raises(ValueError, match="unknown class"):
        heat_map(test_classifier, xray, "fracture")


# -- nothing left behind --------------------------------------------------------------------
def test_one_call_leaves_no_hook(test_classifier: Classifier):
    class_activation_map(test_classifier, synthetic_xray(shape=(96, 96)))
    TrustCheck(test_classifier, ood=None).classify(synthetic_xray(), activations=True)
    assert hook_count(test_classifier) == 0
