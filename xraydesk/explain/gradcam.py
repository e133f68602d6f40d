"""Grad-CAM: where the model looked, as a heat map over the source image.

Uses the grad-cam package (``with GradCAM(...)``) on the last ResNet stage. Its context
manager releases the package's hooks when the block ends, not when ``__del__`` happens to
run, so repeated use in a long-running app does not grow memory or slow every later
forward pass.
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

    One forward and one backward pass. The grad-cam package picks the top class itself
    but has no public way to say which one it picked (only the ``outputs`` attribute of
    its internals), so a forward hook of our own on the network records the logits of
    that same forward pass; it is removed with the package's hooks, in ``finally``.
    """
    network = classifier.network
    logits: list[torch.Tensor] = []

    def keep_logits(_module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        logits.append(output.detach())

    swallowed: IndexError | None = None
    with classifier.lock:
        own_hook = network.register_forward_hook(keep_logits)
        try:
            targets = None if index is None else [ClassifierOutputTarget(index)]
            with GradCAM(model=network, target_layers=[cam_target_layer(network)]) as cam:
                try:
                    with torch.enable_grad():
                        out = cam(input_tensor=tensor.to(classifier.device.device), targets=targets)
                except IndexError as exc:  # GradCAM.__exit__ would print and swallow it
                    swallowed = exc
        finally:
            own_hook.remove()
            network.zero_grad(set_to_none=True)
    if swallowed is not None:
        raise swallowed
    if index is None:
        index = int(logits[0][0].argmax())
    return np.asarray(out[0], dtype=np.float32), index


def _to_source(cam: np.ndarray, classifier: Classifier, shape: tuple[int, int]) -> np.ndarray:
    """Undo the preprocessing geometry: crop any letterbox padding, resize to the source."""
    top, left, bottom, right = classifier.preprocessing.content_box(*shape)
    crop = torch.from_numpy(np.ascontiguousarray(cam[top:bottom, left:right]))
    resized = F.interpolate(crop[None, None], size=shape, mode="bilinear", align_corners=False)
    return resized[0, 0].clamp_(0.0, 1.0).numpy()
