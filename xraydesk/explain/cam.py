"""The class activation map (CAM): the heat map from the same forward pass as the probabilities.

For a network whose last stage is followed by global average pooling and one linear
layer (the ResNet-50 of every model card), the logit of class c is
``b_c + mean_ij sum_k w_ck A_k(i, j)``. Its gradient with respect to ``A_k(i, j)`` is
``w_ck / (h w)`` at every position, so Grad-CAM's channel weights are the head's
weights divided by a constant and, after ReLU and min-max scaling, Grad-CAM *is*
``ReLU(sum_k w_ck A_k)`` (Zhou et al., CVPR 2016). That needs the last stage's
activations, which the forward pass computing the probabilities already has
(``Classifier.forward``): no backward pass and no second forward.

The scaling follows the grad-cam package (ReLU, min-max to [0, 1] at feature
resolution, bilinear resize to the input), then ``geometry.to_source`` maps it onto the
source pixels the same way as for Grad-CAM; tests/explain/test_cam.py checks the two agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from xraydesk.classifier import Classifier, ForwardOutputs
from xraydesk.explain.geometry import to_source
from xraydesk.explain.methods import CAM, GRADCAM
from xraydesk.imaging.resample import resize
from xraydesk.imaging.xray import XRay


@dataclass(frozen=True)
class CamResult:
    heatmap: np.ndarray  # float32 (H, W) in [0, 1] at the source image's size
    class_id: str
    seconds: float
    method: str = GRADCAM  # a key of explain.methods.METHODS


def class_index(classifier: Classifier, class_id: str | None) -> int | None:
    """The head row of ``class_id`` (None stays None: the predicted class)."""
    ids = classifier.class_ids
    if class_id is not None and class_id not in ids:
        raise ValueError(f"unknown class {class_id!r} for model {classifier.card.name!r}: {ids}")
    return None if class_id is None else ids.index(class_id)


def class_activation_map(
    classifier: Classifier,
    xray: XRay,
    class_id: str | None = None,
    outputs: ForwardOutputs | None = None,
    row: int = 0,
) -> CamResult:
    """CAM for ``class_id`` (default: the predicted class) at the source image's size.

    ``outputs`` is the forward pass that already classified ``xray`` (row ``row`` of its
    batch); without it one forward pass is run here. ``seconds`` counts only what this
    call did.
    """
    start = time.perf_counter()
    index = class_index(classifier, class_id)
    if outputs is None or outputs.activations is None:
        outputs = classifier.forward(classifier.preprocess(xray)[None])
        row = 0
    if index is None:
        index = int(outputs.logits[row].argmax())
    assert outputs.activations is not None
    small = cam_at_input(classifier, outputs.activations[row], index)
    heatmap = to_source(small, classifier.preprocessing, xray.shape)
    return CamResult(heatmap, classifier.class_ids[index], time.perf_counter() - start, CAM)


def cam_at_input(classifier: Classifier, activations: np.ndarray, index: int) -> np.ndarray:
    """The map at the model's input size from one image's last-stage activations (D, h, w).

    ReLU of the head's row ``index`` times the activations, min-max scaled at feature
    resolution, then resized bilinearly to the input square: the grad-cam package's order.
    """
    cam = classifier.class_maps(np.asarray(activations)[None], [index])[0]
    cam = cam - cam.min()
    cam = cam / (1e-7 + cam.max())
    size = classifier.preprocessing.size
    return resize(cam, size, size)
