"""Test models whose head is set by hand: an empty Grad-CAM, a map for every class, an
answer fixed in advance (``make_test_model``'s network, its head changed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from tests.dicom_factory import make_dicom
from tests.model_factory import make_test_model
from xraydesk.model.card import ModelCard
from xraydesk.model.saving import load_network, save_model


def make_head_model(
    directory: Path,
    name: str,
    *,
    seed: int = 5,
    negative: bool = False,
    lean: str | None = None,
    margin: float = 6.0,
    size: int = 64,
    **card_fields: object,
) -> Path:
    """A ResNet-50 whose head weights are all positive (every class has a heat map), or
    all negative (``negative``); with ``lean``, a bias that favours that class by
    ``margin`` logits, so it answers ``lean`` on any film. ``card_fields`` go on the card
    (e.g. ``limitations``)."""
    card = ModelCard.read(make_test_model(directory, name=name, size=size, seed=seed))
    network = load_network(card)
    with torch.no_grad():
        network.fc.weight.abs_()
        if negative:
            network.fc.weight.neg_()
        if lean is not None:
            network.fc.bias.zero_()
            network.fc.bias[card.class_ids.index(lean)] = margin
    return save_model(network, dataclasses.replace(card, **card_fields), directory)


def make_empty_cam_model(directory: Path, size: int = 64) -> Path:
    """A ResNet-50 whose head weights are all negative: the gradient of every logit with
    respect to the (non-negative) last-stage activations is negative, so Grad-CAM's
    ReLU leaves an all-zero map, while the probabilities stay ordinary."""
    return make_head_model(
        directory,
        "empty-cam",
        seed=3,
        negative=True,
        size=size,
        description="Random weights with an all-negative head: Grad-CAM is empty.",
    )


def make_leaning_model(directory: Path, lean: str, name: str, margin: float = 6.0) -> Path:
    """A model with a map for every class that answers ``lean`` on any film."""
    return make_head_model(
        directory,
        name,
        lean=lean,
        margin=margin,
        description=f"Random weights with a head that leans to {lean}.",
    )


def synthetic_film(path: Path, extra: dict[str, str] | None = None) -> Path:
    """A 12-bit DICOM of smooth waves and noise: no chest, so the input gate refuses it."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:256, 0:224]
    pixels = 1800 + 900 * np.sin(x / 30.0) * np.cos(y / 40.0) + rng.normal(0, 60, (256, 224))
    return make_dicom(path, np.clip(pixels, 0, 4095).astype(np.uint16), bits_stored=12, extra=extra)
