"""Grad-CAM: shape, class choice, geometry, overlay, and no hook or memory leak over 200 calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.model_factory import hook_count, make_test_model
from tests.paths import REPO_ROOT
from tests.xrays import synthetic_xray
from xraydesk.classifier import Classifier
from xraydesk.explain import blend_overlay, colormap_lut, grad_cam


def test_heatmap_at_source_size_for_predicted_class(test_classifier: Classifier):
    xray = synthetic_xray(shape=(300, 240))
    result = grad_cam(test_classifier, xray)
    assert result.heatmap.shape == (300, 240)
    assert result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    assert result.class_id == test_classifier.predict(xray).predicted


def test_explicit_class_and_unknown_class(test_classifier: Classifier):
    xray = synthetic_xray()
    maps = {cid: grad_cam(test_classifier, xray, cid).heatmap for cid in test_classifier.class_ids}
    assert not np.allclose(maps["normal"], maps["covid19"])  # each class has its own evidence
    with pytest.raises(ValueError, match="unknown class"):
        grad_cam(test_classifier, xray, "fracture")


def test_letterbox_heatmap_ignores_padding(tmp_path: Path):
    card = make_test_model(tmp_path, name="lb", resize="letterbox")
    classifier = Classifier.load(card, device="cpu")
    result = grad_cam(classifier, synthetic_xray(shape=(120, 300)))
    assert result.heatmap.shape == (120, 300)


def test_one_call_leaves_no_hook_and_no_gradient(test_classifier: Classifier):
    """The fast guard of what the slow test checks over 200 calls."""
    grad_cam(test_classifier, synthetic_xray(shape=(96, 96)))
    assert hook_count(test_classifier) == 0
    assert all(p.grad is None for p in test_classifier.network.parameters())


# Run in a fresh interpreter: resident memory in the test process depends on what every
# earlier test left in the allocator's pools and threads, which is not what this measures.
_REPEAT_SCRIPT = """
import ctypes, gc, json, sys
from xraydesk.classifier import Classifier
from xraydesk.explain import heat_map
from xraydesk.model.network import cam_target_layer
from tests.model_factory import hook_count
from tests.xrays import synthetic_xray

def rss_mib():
    gc.collect()
    try:  # hand freed heap pages back first: what stays is what is still held
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

classifier = Classifier.load(sys.argv[1], device="cpu")
method = sys.argv[2]
xray = synthetic_xray(shape=(96, 96))
before_hooks = hook_count(classifier)
for _ in range(100):  # warm-up: allocator pools and oneDNN's caches settle
    heat_map(classifier, xray, method=method)
start = rss_mib()
for _ in range(200):
    heat_map(classifier, xray, method=method)
print(json.dumps({
    "growth": rss_mib() - start,
    "hooks": [before_hooks, hook_count(classifier)],
    "grads": any(p.grad is not None for p in classifier.network.parameters()),
    "target_hooks": len(cam_target_layer(classifier.network)._forward_hooks),
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradcam", "cam"])
def test_hooks_released_and_no_memory_growth_over_200_calls(test_model_path: Path, method: str):
    """Like pytorch-grad-cam's own tests: repeated heat maps leave no hook, no gradient
    and no growing memory, for the package's Grad-CAM and for the forward-pass CAM."""
    import json
    import subprocess
    import sys

    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc/self/status on this system")
    root = REPO_ROOT
    done = subprocess.run(
        [sys.executable, "-c", _REPEAT_SCRIPT, str(test_model_path), method],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["hooks"] == [0, 0]
    assert not result["grads"]
    assert result["growth"] < 40, (
        f"resident memory grew by {result['growth']:.1f} MiB over 200 {method} calls"
    )
    # prediction afterwards is unaffected by any leftover hook state
    assert result["target_hooks"] == 0


def test_overlay_blend():
    gray = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    heat = np.zeros_like(gray)
    heat[20:40, 20:40] = 1.0
    out = blend_overlay(gray, heat, opacity=0.5)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    untouched = (gray[0, 0] * 255 + 0.5).astype(np.uint8)
    assert (out[0, 0] == untouched).all()  # zero heat leaves the radiograph untinted
    hot = colormap_lut()[255].astype(int)
    assert np.abs(out[30, 30].astype(int) - (0.5 * hot + 0.5 * gray[30, 30] * 255)).max() <= 2
    np.testing.assert_array_equal(
        blend_overlay(gray, heat, opacity=0.0)[..., 0], (gray * 255 + 0.5).astype(np.uint8)
    )
    with pytest.raises(ValueError):
        blend_overlay(gray, heat[:10])


def test_colour_map_runs_cold_to_hot():
    """Viridis (issue 19 #3): dark violet-blue where the model barely looked, yellow where
    it looked most; uniformity and transparency are tested in tests/gui/test_heatmap_honesty."""
    lut = colormap_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0].max() < 96 and lut[0, 2] > lut[0, 1]  # dark, bluish where it did not look
    assert lut[40, 2] > lut[40, 0]  # blue when it barely looked
    assert lut[255, 0] > 2 * lut[255, 2] and lut[255, 1] > 200  # bright yellow where most
