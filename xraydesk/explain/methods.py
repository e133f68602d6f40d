"""The heat-map methods a user may choose, by key: CAM (the default), Grad-CAM, Grad-CAM++.

CAM comes from the forward pass that gave the probabilities (explain/cam.py). Grad-CAM
and Grad-CAM++ run the grad-cam package: one more forward and a backward pass each,
several times slower on a CPU; they are offered for comparison. Score-CAM and its kin
are not: hundreds of forward passes per map take minutes on a CPU.

The registry itself imports neither torch nor the grad-cam package: the settings and
the viewer's method menu read it before any model is loaded. Running the chosen method is
``explain.heatmaps.heat_map``: this registry stays below cam.py and gradcam.py, which use
its keys.
"""

from __future__ import annotations

from dataclasses import dataclass

CAM, GRADCAM, GRADCAM_PLUS_PLUS = "cam", "gradcam", "gradcam++"


@dataclass(frozen=True)
class HeatMapMethod:
    key: str  # stored in settings and in CamResult.method
    label: str  # what users see: the menu, the results panel, the report
    backward: bool  # needs a backward pass (a second, slower computation)
    summary: str  # the menu's tooltip


METHODS: dict[str, HeatMapMethod] = {
    m.key: m
    for m in (
        HeatMapMethod(
            CAM,
            "CAM",
            False,
            "Class activation map from the same forward pass as the probabilities "
            "(for this network it equals Grad-CAM). Fast.",
        ),
        HeatMapMethod(
            GRADCAM,
            "Grad-CAM",
            True,
            "Grad-CAM (grad-cam package): a second forward and a backward pass.",
        ),
        HeatMapMethod(
            GRADCAM_PLUS_PLUS,
            "Grad-CAM++",
            True,
            "Grad-CAM++ (grad-cam package): weighs positive gradients per position; "
            "a second forward and a backward pass.",
        ),
    )
}
DEFAULT_METHOD = CAM


def method_label(key: str) -> str:
    """How users see the method ``key`` ("CAM", "Grad-CAM"); unknown keys as they are."""
    method = METHODS.get(key)
    return method.label if method else key


def available(key: str) -> bool:
    """Whether ``key`` can run here: the backward-pass methods need torch and the grad-cam
    package, which the light build leaves out."""
    from xraydesk.optional import installed

    method = METHODS.get(key)
    if method is None:
        return False
    return not method.backward or (installed("torch") and installed("pytorch_grad_cam"))


def known_method(key: object) -> str:
    """``key`` when it names a method that runs here, else the default (for settings read
    from disk, perhaps written by the full build)."""
    return key if isinstance(key, str) and available(key) else DEFAULT_METHOD
