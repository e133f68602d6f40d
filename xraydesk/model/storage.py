"""Saving and loading model weights: safetensors plus a checked sha256."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from xraydesk.errors import ModelError
from xraydesk.files import sha256_file
from xraydesk.model.card import ModelCard
from xraydesk.model.network import build_network


def save_model(
    network: nn.Module, card: ModelCard, directory: str | Path, half: bool = False
) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json`` into ``directory``; returns the card path.

    ``half`` stores float16 weights (bundled models: half the size, loaded back to float32).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    state = {
        key: (value.detach().to("cpu", dtype) if value.is_floating_point() else value.cpu())
        .contiguous()
        .clone()
        for key, value in network.state_dict().items()
    }
    weights = directory / f"{card.name}.safetensors"
    tmp = weights.with_name(f".{weights.name}.tmp")
    # One metadata key: safetensors writes several in a per-process order, which would make
    # the same weights a different file (and a different sha256) on every save.
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.chmod(tmp, 0o644)
    tmp.replace(weights)
    card.weights_file = weights.name
    card.weights_sha256 = sha256_file(weights)
    card.weights_dtype = "float16" if half else "float32"
    card_path = directory / f"{card.name}.json"
    card.write(card_path)
    return card_path


def load_network(card: ModelCard) -> nn.Module:
    """Build the card's network and load its weights as float32, after checking the sha256."""
    weights = card.weights_path
    if not weights.is_file():
        raise ModelError(f"{weights}: weights file of model {card.name!r} is missing")
    actual = sha256_file(weights)
    if actual != card.weights_sha256:
        raise ModelError(
            f"{weights}: weights do not match the sha256 in the model card "
            f"(expected {card.weights_sha256[:12]}…, found {actual[:12]}…); "
            "the file is damaged or was replaced"
        )
    # Built on the meta device (no memory, no random initialisation) and then given the
    # file's tensors: initialising a ResNet-50 only to overwrite it, then copying every
    # weight once more, took most of a second at each start.
    with torch.device("meta"):
        network = build_network(card.architecture, len(card.classes), card.preprocessing.channels)
    try:
        state = load_file(str(weights))
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
        network.load_state_dict(state, strict=True, assign=True)
    except Exception as exc:  # safetensors and torch raise several types for a bad file
        raise ModelError(f"{weights}: cannot load weights for model {card.name!r} ({exc})") from exc
    network.eval()
    return network


__all__ = ["load_network", "save_model"]
