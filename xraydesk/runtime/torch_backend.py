"""The torch backend: the network as trained, on CUDA, Apple MPS or the CPU.

Training and Grad-CAM need gradients and stay here; inference runs here on a GPU, and on
a CPU when no exported backend passed the faithfulness bar for the model (or none is
installed).
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

from xraydesk.model.device import DeviceChoice
from xraydesk.model.three_outputs import ThreeOutputs
from xraydesk.runtime.backend import Backend, Outputs, Precision


class TorchBackend(Backend):
    runtime = "torch"

    def __init__(self, network: nn.Module, device: DeviceChoice) -> None:
        self.device = device
        self.network = network.to(device.device, memory_format=device.memory_format).eval()
        self._three = ThreeOutputs(self.network)
        self.precision: Precision = "bf16" if device.precision == "bf16" else "fp32"
        # One pass at a time: the hooks of one pass (and Grad-CAM's, which the classifier
        # takes this lock for) must not see another's activations.
        self.lock = threading.RLock()

    @property
    def label(self) -> str:
        return self.device.label

    def run(self, batch: np.ndarray | torch.Tensor, activations: bool = True) -> Outputs:
        x = torch.as_tensor(batch, dtype=torch.float32)
        x = x.to(self.device.device, non_blocking=True).contiguous(
            memory_format=self.device.memory_format
        )
        with self.lock, torch.inference_mode(), self.device.autocast():
            logits, features, stage = self._three(x)
        kept = stage.float().cpu().contiguous().numpy() if activations else None
        return Outputs(logits.float().cpu().numpy(), features.float().cpu().numpy(), kept)
