"""ResNet-50, defined here so that running a model never imports torchvision.

Importing torchvision pulls in ``torch._dynamo`` and sympy (about 3.4 s on a 2-core
Xeon) for one class definition. This is the same network, layer for layer: the module
names, their order, the ``state_dict`` keys and shapes, the initialisation and the
forward pass equal ``torchvision.models.resnet50`` (v1.5: the stride sits in the 3x3
convolution), so every saved ``.safetensors`` file loads unchanged and gives the same
outputs. ``tests/project/test_startup.py`` checks that against torchvision on one state dict.
"""

from __future__ import annotations

import torch
from torch import nn

STAGES = (3, 4, 6, 3)  # bottleneck blocks per stage of ResNet-50
EXPANSION = 4  # a bottleneck's output has 4 times its width in channels


class Bottleneck(nn.Module):
    """1x1 down, 3x3 (with the stride), 1x1 up, plus the shortcut."""

    expansion = EXPANSION

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """Stem, four bottleneck stages, global average pool, linear head (``fc``)."""

    def __init__(self, num_classes: int = 1000, layers: tuple[int, ...] = STAGES) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * EXPANSION, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                kaiming_init(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * EXPANSION:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes, planes * EXPANSION, kernel_size=1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(planes * EXPANSION),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * EXPANSION
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def fold_batch_norms(network: ResNet) -> ResNet:
    """``network`` (in eval mode) with every batch norm folded into the convolution it
    follows and replaced by an identity, in place; the same outputs, one pass less per
    layer (the batch engine's private copy, ``batch.batch_model``).

    Why not torch.fx's ``fuse``: it traces the network, and tracing patches
    ``torch.nn.Module.__call__`` for the whole process while it runs. A forward pass in
    another thread at that moment (the DICOM node's heat map while the next group's batch
    starts; the viewer's Grad-CAM beside the batch panel) went through the tracer and
    failed: "NameError: module is not installed as a submodule". The layout is defined
    here, so the pairs are known without tracing."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def fold(owner: nn.Module, conv: str, bn: str) -> None:
        fused = fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn))
        setattr(owner, conv, fused)
        setattr(owner, bn, nn.Identity())

    fold(network, "conv1", "bn1")
    for stage in (network.layer1, network.layer2, network.layer3, network.layer4):
        for block in stage:
            for k in (1, 2, 3):
                fold(block, f"conv{k}", f"bn{k}")
            if block.downsample is not None:  # Sequential(conv, bn): children "0" and "1"
                fold(block.downsample, "0", "1")
    return network


def kaiming_init(weight: torch.Tensor) -> None:
    """He initialisation of a convolution, as torchvision does it. A network built on the
    meta device (to receive a weights file's tensors) has nothing to draw: skipped, as
    ``normal_`` on a meta tensor would import torch._dynamo (and sympy) for nothing."""
    if not weight.is_meta:
        nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")


def resnet50(num_classes: int = 1000) -> ResNet:
    """A randomly initialised ResNet-50 (never downloads weights)."""
    return ResNet(num_classes=num_classes)
