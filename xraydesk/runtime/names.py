"""The runtimes' names and the exported graph's output names, importable without torch
(the CLI builds its options from them; the torch-free ONNX export names its outputs)."""

from __future__ import annotations

RUNTIMES: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
RUNTIME_CHOICES: tuple[str, ...] = ("auto", *RUNTIMES)
RUNTIME_NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
RUNTIME_ENV = "XRAYDESK_RUNTIME"  # torch|onnxruntime|openvino|auto overrides the choice
# An exported graph's outputs, in order (model.three_outputs.ThreeOutputs returns them so too).
OUTPUT_NAMES: tuple[str, ...] = ("logits", "features", "activations")
