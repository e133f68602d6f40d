"""The runtimes' names, importable without torch (the CLI builds its options from them)."""

from __future__ import annotations

RUNTIMES: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
RUNTIME_CHOICES: tuple[str, ...] = ("auto", *RUNTIMES)
RUNTIME_NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
RUNTIME_ENV = "XRAYDESK_RUNTIME"  # torch|onnxruntime|openvino|auto overrides the choice
