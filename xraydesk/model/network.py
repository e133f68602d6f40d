"""The network architectures a model card may name.

The ResNet-50 is defined in ``xraydesk.model.resnet``, not taken from torchvision:
importing torchvision costs seconds at every start (it pulls in torch._dynamo and sympy).
"""

from __future__ import annotations

import torch
from torch import nn

from xraydesk.model.resnet import kaiming_init, resnet50

ARCHITECTURES = ("resnet50",)


def build_network(architecture: str, num_classes: int, in_channels: int) -> nn.Module:
    """A randomly initialised network; weights come from a model file, never a download."""
    if architecture != "resnet50":
        raise ValueError(f"unknown architecture {architecture!r} (known: {ARCHITECTURES})")
    net = resnet50(num_classes=num_classes)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        kaiming_init(net.conv1.weight)
    return net


def cam_target_layer(network: nn.Module) -> nn.Module:
    """The last ResNet stage: where Grad-CAM looks."""
    return network.layer4[-1]


def classifier_head(network: nn.Module) -> nn.Linear:
    return network.fc


def replace_head(network: nn.Module, num_classes: int) -> None:
    """A new class set gets a new, freshly initialised linear layer."""
    old = network.fc
    network.fc = nn.Linear(old.in_features, num_classes).to(old.weight.device)


def feature_extractor(network: nn.Module) -> nn.Module:
    """The backbone up to the pooled features (the input of the linear head)."""
    return nn.Sequential(*(m for name, m in network.named_children() if name != "fc"), nn.Flatten())


@torch.no_grad()
def set_head(network: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Write a head trained elsewhere (for example logistic regression) into the network."""
    fc = classifier_head(network)
    if fc.weight.shape != weight.shape:
        replace_head(network, weight.shape[0])
        fc = classifier_head(network)
    fc.weight.copy_(weight)
    fc.bias.copy_(bias)
