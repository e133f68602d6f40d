"""Small, randomly initialised models for tests (the bundled ones may not exist yet)."""

from __future__ import annotations

from pathlib import Path

import torch

from xraydesk.classifier import Classifier
from xraydesk.model.card import ClassInfo, ModelCard
from xraydesk.model.network import build_network
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.saving import save_model

THREE_CLASSES = (("normal", "Normal"), ("pneumonia", "Pneumonia"), ("covid19", "COVID-19"))


def make_test_model(
    directory: Path,
    name: str = "test-3class",
    classes: tuple[tuple[str, str], ...] = THREE_CLASSES,
    size: int = 64,
    seed: int = 0,
    **prep: object,
) -> Path:
    """Write a random ResNet-50 with calibrated batch-norm statistics; returns the card path.

    Calibrating batch norm on a few random images keeps the logits in a realistic range,
    so probabilities are not saturated one-hots and precision checks mean something.
    """
    torch.manual_seed(seed)
    preprocessing = Preprocessing(size=size, **prep)
    network = build_network("resnet50", len(classes), preprocessing.channels)
    network.train()
    with torch.no_grad():
        for _ in range(3):
            network(torch.randn(8, preprocessing.channels, size, size))
    network.eval()
    card = ModelCard(
        name=name,
        version="0.0-test",
        classes=[ClassInfo(cid, display) for cid, display in classes],
        preprocessing=preprocessing,
        weights_file="",
        weights_sha256="",
        description="Random weights for tests: its outputs mean nothing.",
    )
    return save_model(network, card, directory)


def hook_count(classifier: Classifier) -> int:
    """Hooks left on the network: a heat map must leave none behind."""
    count = 0
    for module in classifier.network.modules():
        count += len(module._forward_hooks) + len(module._backward_hooks)
        count += len(getattr(module, "_forward_pre_hooks", {}))
        count += len(getattr(module, "_backward_pre_hooks", {}))
    return count
