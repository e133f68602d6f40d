"""Grad-CAM and Grad-CAM++ from the grad-cam package: heat maps that need a backward pass.

The viewer's default heat map is the class activation map (explain/cam.py), which equals
Grad-CAM for these networks and comes from the forward pass that gave the probabilities.
The package stays for the methods that differ (Grad-CAM++) and as the reference CAM is
tested against.

Uses the grad-cam package (``with GradCAM(...)``) on the last ResNet stage. Its context
manager releases the package's hooks when the block ends, not when ``__del__`` happens to
run, so repeated use in a long-running app does not grow memory or slow every later
forward pass.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from xraydesk.classifier import Classifier
from xraydesk.explain.cam import CamResult, class_index
from xraydesk.explain.geometry import to_source
from xraydesk.explain.methods import GRADCAM, GRADCAM_PLUS_PLUS
from xraydesk.imaging.xray import XRay
from xraydesk.model.network import cam_target_layer

PACKAGE_METHODS: dict[str, type[BaseCAM]] = {GRADCAM: GradCAM, GRADCAM_PLUS_PLUS: GradCAMPlusPlus}


def grad_cam(
    classifier: Classifier, xray: XRay, class_id: str | None = None, method: str = GRADCAM
) -> CamResult:
    """Grad-CAM (or ``method`` "gradcam++") for ``class_id`` (default: the predicted
    class), at the source image's size.

    The predicted class is the one the app's runtime names (``Classifier.predict``), not
    the top class of the torch pass made here for the gradients: on a near tie the two
    can differ (a reduced-precision runtime moves probabilities by up to the faithfulness
    bar), and the map must explain the class the verdict shows."""
    start = time.perf_counter()
    if method not in PACKAGE_METHODS:
        raise ValueError(f"unknown grad-cam package method {method!r}: {list(PACKAGE_METHODS)}")
    if class_id is None:
        class_id = classifier.predict(xray).predicted
    index = class_index(classifier, class_id)
    tensor = torch.from_numpy(classifier.preprocess(xray)[None])
    cam_small, index = _cam_at_input(classifier, tensor, index, PACKAGE_METHODS[method])
    heatmap = to_source(cam_small, classifier.preprocessing, xray.shape)
    seconds = time.perf_counter() - start
    return CamResult(heatmap, classifier.class_ids[index], seconds, method)


def _cam_at_input(
    classifier: Classifier, tensor: torch.Tensor, index: int | None, kind: type[BaseCAM]
) -> tuple[np.ndarray, int]:
    """The heat map at the model's input size; ``index`` None explains the top class.

    One forward and one backward pass. The grad-cam package picks the top class itself
    but has no public way to say which one it picked (only the ``outputs`` attribute of
    its internals), so a forward hook of our own on the network records the logits of
    that same forward pass; it is removed with the package's hooks, in ``finally``.
    """
    network = classifier.require_network("Grad-CAM")
    logits: list[torch.Tensor] = []

    def keep_logits(_module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        logits.append(output.detach())

    swallowed: IndexError | None = None
    with classifier.lock:
        own_hook = network.register_forward_hook(keep_logits)
        try:
            targets = None if index is None else [ClassifierOutputTarget(index)]
            with kind(model=network, target_layers=[cam_target_layer(network)]) as cam:
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
