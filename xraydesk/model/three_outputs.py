"""The network as one function with three outputs, the form the exported graph takes
(``runtime.names.OUTPUT_NAMES`` names them in that order).

Hooks on the classifier head (its input: the pooled features) and on the last stage (its
output: what the class activation map weighs) catch the two tensors on their way through
the unchanged network, so any architecture ``model.network`` knows exports the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from xraydesk.model.network import cam_target_layer, classifier_head


class ThreeOutputs(nn.Module):
    """``forward(x) -> (logits, features, activations)`` of the wrapped network."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features: list[torch.Tensor] = []
        stage: list[torch.Tensor] = []
        head = classifier_head(self.network)
        last = cam_target_layer(self.network)
        hooks = [
            head.register_forward_pre_hook(lambda _m, args: features.append(args[0])),
            last.register_forward_hook(lambda _m, _a, out: stage.append(out)),
        ]
        try:
            logits = self.network(x)
        finally:
            for hook in hooks:
                hook.remove()
        return logits, features[0], stage[0]
