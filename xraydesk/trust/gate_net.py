"""The input gate's network in torch, for training it (``training/train_gate.py``).

The app runs the trained weights in numpy (``gate_forward``), so that the light build,
which has no torch, gates every image too; tests/trust/test_gate_forward.py checks that both
compute the same logits.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


class GateNet(nn.Module):
    """Four conv layers on a 64 x 64 thumbnail, then 9 logits: content 3, turns 4, inverted 2
    (``n_out`` other than 9: the same network for other questions, ``trust.appearance``)."""

    def __init__(self, n_out: int = 9) -> None:
        super().__init__()
        layers: list[nn.Module] = [  # a strided first layer: 32 x 32 from here on
            nn.Conv2d(1, 16, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        ]
        widths = (16, 32, 64, 64)
        for cin, cout in itertools.pairwise(widths):
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 4 * 4, 64), nn.ReLU(inplace=True), nn.Dropout(0.2)
        )
        self.out = nn.Linear(64, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.head(self.features(x)))


def torch_logits(network: GateNet):
    """``network`` as the ``InputGate``'s logits function (numpy in, numpy out)."""
    network.eval()

    def logits(thumbs):
        with torch.inference_mode():
            return network(torch.from_numpy(thumbs)).numpy()

    return logits
