"""A model's weights file, checked and read without torch.

``verified_weights`` is the one check that the file a card names is there and is the
file the card was made with (its sha256); ``load_state`` reads it as numpy arrays. The
torch loader (``saving.load_network``) and the ONNX export (``runtime.export``, which
the light build uses) both start here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xraydesk.errors import ModelError
from xraydesk.files import sha256_file
from xraydesk.model.card import ModelCard

# The tensors whose shapes say how many classes and input channels the weights were made for.
HEAD_KEY, STEM_KEY = "fc.weight", "conv1.weight"
# Files checked in this process: (path, inode, size, mtime) -> (sha256, channels, classes).
_VERIFIED: dict[tuple[str, int, int, int], tuple[str, int, int]] = {}
_LOCK = threading.Lock()


def verified_weights(card: ModelCard) -> Path:
    """The card's weights file, after checking it exists, matches the card's sha256 and
    has as many outputs as the card has classes (and the card's input channels).

    A file this process already checked is not hashed again while its size, time and
    inode stay the same (``_VERIFIED``): one classify asked three times (the export, the
    runtime's graph, the heat map's head), 0.06 s each for a 94 MB file on an Intel Xeon
    family 6 model 207. A file written or replaced since is hashed again."""
    weights = card.weights_path
    try:
        stat = weights.stat()
    except OSError:
        stat = None
    if stat is None or not weights.is_file():
        raise ModelError(f"{weights}: weights file of model {card.name!r} is missing")
    key = (str(weights.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        if _VERIFIED.get(key) == (
            card.weights_sha256,
            card.preprocessing.channels,
            len(card.classes),
        ):
            return weights
    actual = sha256_file(weights)
    if actual != card.weights_sha256:
        raise ModelError(
            f"{weights}: weights do not match the sha256 in the model card "
            f"(expected {card.weights_sha256[:12]}…, found {actual[:12]}…); "
            "the file is damaged or was replaced"
        )
    _check_shapes(card, weights)
    with _LOCK:
        _VERIFIED[key] = (card.weights_sha256, card.preprocessing.channels, len(card.classes))
    return weights


def _check_shapes(card: ModelCard, weights: Path) -> None:
    """A 4-class card over 3-class weights would pair names with the wrong outputs (and
    failed deep in a ``zip``): refuse it here, from the file's header alone."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="np") as f:
            keys = set(f.keys())
            head = f.get_slice(HEAD_KEY).get_shape() if HEAD_KEY in keys else None
            stem = f.get_slice(STEM_KEY).get_shape() if STEM_KEY in keys else None
    except Exception as exc:  # safetensors raises several types for a bad file
        raise ModelError(f"{weights}: cannot read the weights ({exc})") from exc
    if head is None or stem is None or len(head) != 2 or len(stem) != 4:
        raise ModelError(
            f"{weights}: not the weights of a {card.architecture} (no {HEAD_KEY} or "
            f"{STEM_KEY} of the expected shape)"
        )
    if head[0] != len(card.classes):
        raise ModelError(
            f"{weights}: the weights have {head[0]} outputs but the card "
            f"{card.path or card.name} names {len(card.classes)} classes; the card does "
            "not belong to these weights, so the model is not loaded"
        )
    if stem[1] != card.preprocessing.channels:
        raise ModelError(
            f"{weights}: the weights take {stem[1]}-channel images but the card "
            f"{card.path or card.name} says {card.preprocessing.channels}"
        )


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
