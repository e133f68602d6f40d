"""Running the heat-map method a user chose (explain/methods.py holds the registry).

Apart from the registry so that it can import both implementations: cam.py and
gradcam.py use the registry's keys, and the registry must stay importable without
torch or the grad-cam package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xraydesk.explain.methods import CAM, DEFAULT_METHOD, METHODS, available, method_label

if TYPE_CHECKING:
    from xraydesk.classifier import Classifier, ForwardOutputs
    from xraydesk.explain.cam import CamResult
    from xraydesk.imaging.xray import XRay


def heat_map(
    classifier: Classifier,
    xray: XRay,
    class_id: str | None = None,
    method: str = DEFAULT_METHOD,
    outputs: ForwardOutputs | None = None,
) -> CamResult:
    """The heat map of ``xray`` for ``class_id`` (default: the predicted class) by ``method``.

    ``outputs``: the forward pass that already classified ``xray``; CAM then needs no
    network call at all. The grad-cam package's methods ignore it (they need gradients).
    """
    if method not in METHODS:
        raise ValueError(f"unknown heat-map method {method!r}: choose one of {list(METHODS)}")
    if not available(method):
        from xraydesk.errors import ModelError
        from xraydesk.optional import FULL_BUILD_HINT

        raise ModelError(f"{method_label(method)} needs a backward pass: {FULL_BUILD_HINT}")
    if method == CAM:
        from xraydesk.explain.cam import class_activation_map

        return class_activation_map(classifier, xray, class_id, outputs)
    from xraydesk.explain.gradcam import grad_cam  # the grad-cam package, only when chosen

    return grad_cam(classifier, xray, class_id, method)
