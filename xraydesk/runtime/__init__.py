"""Runtimes for inference: one interface (``Backend``) for the viewer, the CLI and the
batch engine; torch on CUDA and MPS, and on a CPU the fastest exported runtime (OpenVINO,
ONNX Runtime) whose results were measured faithful to fp32 torch for the model.

Qt-free and part of the model layer. Training and Grad-CAM stay in torch.
"""

from __future__ import annotations

from xraydesk.runtime.backend import RUNTIMES, Backend, Outputs, Precision, RuntimeUnavailable

__all__ = ["RUNTIMES", "Backend", "Outputs", "Precision", "RuntimeUnavailable"]
