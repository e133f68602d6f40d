"""Saving and loading model weights: safetensors plus a checked sha256.

``save_state`` writes numpy arrays (the light build's quick mode, which has no torch, saves
a base model's weights with a new head); ``save_model`` hands it a torch network's state,
so there is one writer and one file format.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import save_file

if TYPE_CHECKING:
    from torch import nn

from xraydesk.errors import ModelError
from xraydesk.files import sha256_file
from xraydesk.model.card import ModelCard
from xraydesk.model.weights import verified_weights


def save_model(
    network: nn.Module, card: ModelCard, directory: str | Path, half: bool = False
) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json`` into ``directory``; returns the card path.

    ``half`` stores float16 weights (bundled models: half the size, loaded back to float32).
    The card also gets the saved weights' outputs on the probe images
    (``model.reference_outputs``), which every exported graph is checked against.
    """
    from xraydesk.model.reference_outputs import reference_outputs

    state = {k: v.detach().cpu().contiguous().numpy() for k, v in network.state_dict().items()}
    card_path = save_state(state, card, directory, half)
    with _removed_on_failure(card_path, card_path.with_suffix(".safetensors")):
        saved = load_network(card) if half else network  # float16 weights compute otherwise
        card.reference_outputs = reference_outputs(saved, card.preprocessing)
        card.write(card_path)
    return card_path


@contextlib.contextmanager
def _removed_on_failure(*paths: Path) -> Iterator[None]:
    """Remove ``paths`` when the block fails: a model whose card could not be written (a
    class name that is not UTF-8, a full disk, Ctrl-C) left 100 MB of weights no card
    names, in the library for ever."""
    try:
        yield
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise


def save_state(
    state: Mapping[str, np.ndarray], card: ModelCard, directory: str | Path, half: bool = False
) -> Path:
    """``save_model`` for weights held as numpy arrays (torch's state_dict names)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = np.float16 if half else np.float32
    arrays = {
        key: np.ascontiguousarray(
            value.astype(dtype) if np.issubdtype(value.dtype, np.floating) else value
        )
        for key, value in state.items()
    }
    weights = directory / f"{card.name}.safetensors"
    tmp = weights.with_name(f".{weights.name}.tmp")
    # One metadata key: safetensors writes several in a per-process order, which would make
    # the same weights a different file (and a different sha256) on every save.
    save_file(arrays, str(tmp), metadata={"format": "pt"})
    os.chmod(tmp, 0o644)
    tmp.replace(weights)
    card.weights_file = weights.name
    card.weights_sha256 = sha256_file(weights)
    card.weights_dtype = "float16" if half else "float32"
    card_path = directory / f"{card.name}.json"
    with _removed_on_failure(card_path, weights):
        card.write(card_path)
    return card_path


def load_network(card: ModelCard) -> nn.Module:
    """Build the card's network and load its weights as float32, after checking the sha256."""
    import torch
    from safetensors.torch import load_file

    from xraydesk.model.network import build_network

    weights = verified_weights(card)
    # Built on the meta device (no memory, no random initialisation) and then given the
    # file's tensors: initialising a ResNet-50 only to overwrite it, then copying every
    # weight once more, took most of a second at each start.
    try:
        with torch.device("meta"):
            network = build_network(
                card.architecture, len(card.classes), card.preprocessing.channels
            )
    except ValueError as exc:  # a card made in code, not read: its architecture unchecked
        raise ModelError(f"{card.path or card.name}: cannot build the network ({exc})") from exc
    try:
        state = load_file(str(weights))
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
        network.load_state_dict(state, strict=True, assign=True)
    except Exception as exc:  # safetensors and torch raise several types for a bad file
        raise ModelError(f"{weights}: cannot load weights for model {card.name!r} ({exc})") from exc
    network.eval()
    return network


__all__ = ["load_network", "save_model", "save_state"]
