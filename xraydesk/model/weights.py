"""A model's weights file, checked and read without torch.

``verified_weights`` is the one check that the file a card names is there and is the
file the card was made with (its sha256); ``load_state`` reads it as numpy arrays. The
torch loader (``storage.load_network``) and the ONNX export (``runtime.export``, which
the light build uses) both start here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xraydesk.errors import ModelError
from xraydesk.files import sha256_file
from xraydesk.model.card import ModelCard


def verified_weights(card: ModelCard) -> Path:
    """The card's weights file, after checking it exists and matches the card's sha256."""
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
    return weights


def load_state(
    path: str | Path, float32: bool = True, keys: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """A safetensors file's tensors as numpy arrays, floating ones as float32 (the bundled
    models store float16) unless ``float32`` is False (as stored: the export, which
    computes in float64 tensor by tensor, then holds half the memory). ``keys``: only
    these tensors (the head of a 94 MB network is 25 KB)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            state = {k: f.get_tensor(k) for k in (f.keys() if keys is None else keys)}
    except Exception as exc:  # safetensors raises several types for a bad file
        raise ModelError(f"{path}: cannot read the weights ({exc})") from exc
    if not float32:
        return state
    return {
        k: v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v
        for k, v in state.items()
    }
