"""A test model whose Grad-CAM is empty, as a briefly trained head often gives."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.model_factory import THREE_CLASSES
from xraydesk.model.card import ClassInfo, ModelCard
from xraydesk.model.network import build_network
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.saving import save_model


def make_empty_cam_model(directory: Path, size: int = 64) -> Path:
    """A ResNet-50 whose head weights are all negative: the gradient of every logit with
    respect to the (non-negative) last-stage activations is negative, so Grad-CAM's
    ReLU leaves an all-zero map, while the probabilities stay ordinary."""
    torch.manual_seed(3)
    preprocessing = Preprocessing(size=size)
    network = build_network("resnet50", len(THREE_CLASSES), preprocessing.channels)
    network.train()
    with torch.no_grad():
        for _ in range(3):
            network(torch.randn(8, preprocessing.channels, size, size))
        network.fc.weight.abs_().neg_()
    network.eval()
    card = ModelCard(
        name="empty-cam",
        version="0.0-test",
        classes=[ClassInfo(cid, display) for cid, display in THREE_CLASSES],
        preprocessing=preprocessing,
        weights_file="",
        weights_sha256="",
        description="Random weights with an all-negative head: Grad-CAM is empty.",
    )
    return save_model(network, card, directory)


def make_leaning_model(directory: Path, lean: str, name: str, margin: float = 6.0) -> Path:
    """A ResNet-50 whose head weights are all positive (every class has a heat map) and
    whose bias favours ``lean`` by ``margin`` logits: it answers ``lean`` on any film."""
    torch.manual_seed(5)
    preprocessing = Preprocessing(size=64)
    network = build_network("resnet50", len(THREE_CLASSES), preprocessing.channels)
    network.train()
    with torch.no_grad():
        for _ in range(3):
            network(torch.randn(8, preprocessing.channels, 64, 64))
        network.fc.weight.abs_()
        network.fc.bias.zero_()
        network.fc.bias[[cid for cid, _ in THREE_CLASSES].index(lean)] = margin
    network.eval()
    card = ModelCard(
        name=name,
        version="0.0-test",
        classes=[ClassInfo(cid, display) for cid, display in THREE_CLASSES],
        preprocessing=preprocessing,
        weights_file="",
        weights_sha256="",
        description=f"Random weights with a head that leans to {lean}.",
    )
    return save_model(network, card, directory)
