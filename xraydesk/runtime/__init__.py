"""Runtimes for inference: one interface (``Backend``) for the viewer, the CLI and the
batch engine; torch on CUDA and MPS, and on a CPU the fastest exported runtime (OpenVINO,
ONNX Runtime) whose results were measured faithful to fp32 torch for the model.

Qt-free; a layer above ``xraydesk.model`` (whose cards, weights and network it uses)
and below ``xraydesk.classifier``. Training and Grad-CAM stay in torch. The names below
are imported on first use (PEP 562): ``runtime.names`` must not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xraydesk.lazy_exports import lazy_getattr

_EXPORTS = {
    "Backend": "xraydesk.runtime.backend",
    "Outputs": "xraydesk.runtime.backend",
    "Precision": "xraydesk.runtime.backend",
    "RuntimeUnavailable": "xraydesk.runtime.backend",
    "RUNTIMES": "xraydesk.runtime.names",
    "select_backend": "xraydesk.runtime.select",
}

if TYPE_CHECKING:
    from xraydesk.runtime.backend import Backend, Outputs, Precision, RuntimeUnavailable
    from xraydesk.runtime.names import RUNTIMES
    from xraydesk.runtime.select import select_backend


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = ["RUNTIMES", "Backend", "Outputs", "Precision", "RuntimeUnavailable", "select_backend"]
