"""Grad-CAM: where the model looked, as a heat map over the source image.

Uses the grad-cam package on the last ResNet stage. Its hooks are released after every
call (not left to ``__del__``), so repeated use in a long-running app does not grow
memory or slow every later forward pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from xraydesk.imaging.xray import XRay
from xraydesk.model.classifier import Classifier
from xraydesk.model.network import cam_target_layer


@dataclass(frozen=True)
class CamResult:
    heatmap: np.ndarray  # float32 (H, W) in [0, 1] at the source image's size
    class_id: str
    seconds: float


def grad_cam(classifier: Classifier, xray: XRay, class_id: str | None = None) -> CamResult:
    """Grad-CAM for ``class_id`` (default: the predicted class), at the source image's size."""
    start = time.perf_counter()
    ids = classifier.class_ids
    if class_id is not None and class_id not in ids:
        raise ValueError(f"unknown class {class_id!r} for model {classifier.card.name!r}: {ids}")
    index = None if class_id is None else ids.index(class_id)
    cam_small, index = _cam_at_input(classifier, classifier.preprocess(xray)[None], index)
    heatmap = _to_source(cam_small, classifier, xray.shape)
    return CamResult(heatmap=heatmap, class_id=ids[index], seconds=time.perf_counter() - start)


def _cam_at_input(
    classifier: Classifier, tensor: torch.Tensor, index: int | None
) -> tuple[np.ndarray, int]:
    """The heat map at the model's input size; ``index`` None explains the top class.

    One forward and one backward pass: the top class comes from the same forward pass.
    """
    network = classifier.network
    with classifier.lock:
        cam = GradCAM(model=network, target_layers=[cam_target_layer(network)])
        try:
            targets = None if index is None else [ClassifierOutputTarget(index)]
            with torch.enable_grad():
                out = cam(input_tensor=tensor.to(classifier.device.device), targets=targets)
            if index is None:
                index = int(cam.outputs[0].argmax())
        finally:
            cam.activations_and_grads.release()
            network.zero_grad(set_to_none=True)
            del cam
    return np.asarray(out[0], dtype=np.float32), index


def _to_source(cam: np.ndarray, classifier: Classifier, shape: tuple[int, int]) -> np.ndarray:
    """Undo the preprocessing geometry: crop any letterbox padding, resize to the source."""
    top, left, bottom, right = classifier.preprocessing.content_box(*shape)
    crop = torch.from_numpy(np.ascontiguousarray(cam[top:bottom, left:right]))
    resized = F.interpolate(crop[None, None], size=shape, mode="bilinear", align_corners=False)
    return resized[0, 0].clamp_(0.0, 1.0).numpy()
