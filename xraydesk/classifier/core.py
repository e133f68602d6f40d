"""A loaded model ready to classify radiographs: a model card and the runtime that runs it.

Above ``xraydesk.runtime`` (``Classifier.load`` chooses the runtime) and so outside
``xraydesk.model``, whose cards, weights and network the runtime itself uses.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xraydesk.errors import ModelError
from xraydesk.imaging.xray import XRay
from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice, select_device
from xraydesk.model.probabilities import softmax
from xraydesk.model.site_profile import load_state
from xraydesk.optional import FULL_BUILD_HINT, has_torch
from xraydesk.runtime.backend import Backend, Outputs

if TYPE_CHECKING:
    from torch import nn


class NonFiniteOutputError(ModelError):
    """The network returned NaN or infinity: no class can be named from that."""


@dataclass(frozen=True)
class Prediction:
    probabilities: dict[str, float]  # class id -> probability; sums to 1
    predicted: str  # class id with the highest probability
    model: str  # "name version"
    device: str  # DeviceChoice.label
    seconds: float = 0.0  # preprocessing and forward pass
    display_names: dict[str, str] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.predicted]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "prediction": self.predicted,
            "probabilities": dict(self.probabilities),
        }


# What one forward pass yields (logits, pooled features, the last stage's activations),
# float32 on the CPU: the probabilities, the out-of-distribution score and the class
# activation map (explain/cam.py) all come from one pass. The exported runtimes return
# the same record, so it is one type.
ForwardOutputs = Outputs


class Classifier:
    """Card + backend (+ the torch network where torch is installed). Thread-safe.

    Every forward pass goes through ``backend``: torch (``runtime.TorchBackend``) or an
    exported graph (OpenVINO, ONNX Runtime). ``network`` is the torch network of the same
    weights, which Grad-CAM needs: with an exported graph it is loaded on first use (so
    classifying never imports torch), and the light build has none. ``lock`` is the torch
    backend's: Grad-CAM hooks the network, and a prediction running in another thread at
    the same moment would otherwise feed its activations into the heat map.
    """

    def __init__(
        self,
        network: nn.Module | None,
        card: ModelCard,
        device: DeviceChoice,
        backend: Backend | None = None,
    ) -> None:
        """``backend`` None: torch on ``device`` with ``network``."""
        if backend is None:
            if network is None:
                raise ModelError(f"model {card.name!r}: neither a network nor a runtime given")
            from xraydesk.runtime.torch_backend import TorchBackend

            backend = TorchBackend(network, device)
        self.card = card
        self.backend = backend
        # torch may run at another precision than asked (fp32 where the model's bf16 was
        # measured unfaithful): the backend's device is the one that runs.
        ran_on = getattr(backend, "device", device) if backend.runtime == "torch" else None
        self.device = ran_on or replace(device, label=backend.label)
        self.preprocessing = card.preprocessing
        self._network = getattr(backend, "network", network)
        if self._network is not None and backend.runtime != "torch":
            self._network = self._network.eval()
        self.lock = getattr(backend, "lock", None) or threading.RLock()
        # the site's calibration (``model.site_profile``), applied by the one verdict
        self.site_profile = load_state(card)

    @classmethod
    def load(
        cls,
        card: ModelCard | str | Path,
        device: str | DeviceChoice = "auto",
        runtime: str | None = None,
        threads: int = 0,
        precision: str | None = None,
    ) -> Classifier:
        """``runtime``: auto, torch, onnxruntime or openvino (None: ``XRAYDESK_RUNTIME``,
        else the default); see ``xraydesk.runtime.select``. ``threads``: an exported
        runtime's threads (0: every core). ``precision``: "fp32" keeps every runtime at
        fp32 (None: ``XRAYDESK_PRECISION``; a given ``DeviceChoice`` keeps its own)."""
        from xraydesk.runtime.select import select_backend

        if not isinstance(card, ModelCard):
            card = ModelCard.read(card)
        choice = device if isinstance(device, DeviceChoice) else select_device(device, precision)
        backend = select_backend(card, choice, runtime, threads=threads, precision=precision)
        return cls(None, card, choice, backend)

    @property
    def network(self) -> nn.Module | None:
        """The torch network (loaded now if the backend is an exported graph); None in the
        light build."""
        if self._network is None and has_torch():
            from xraydesk.model.saving import load_network

            with self.lock:
                if self._network is None:
                    self._network = load_network(self.card)
        return self._network

    @property
    def runtime(self) -> Backend | None:
        """The exported runtime running the forward passes; None when it is torch."""
        return None if self.backend.runtime == "torch" else self.backend

    @property
    def class_ids(self) -> list[str]:
        return self.card.class_ids

    @cached_property
    def head(self) -> tuple[np.ndarray, np.ndarray]:
        """The linear head's weight (classes, D) and bias (classes,), float32: the class
        activation map weighs the last stage's activations with them."""
        if self._network is not None:  # given, or loaded: it may differ from the file
            from xraydesk.model.network import classifier_head

            fc = classifier_head(self._network)
            return (
                fc.weight.detach().float().cpu().numpy().copy(),
                fc.bias.detach().float().cpu().numpy().copy(),
            )
        from xraydesk.model.weights import load_state, verified_weights

        state = load_state(verified_weights(self.card), keys=("fc.weight", "fc.bias"))
        return state["fc.weight"], state["fc.bias"]

    def class_maps(self, activations: np.ndarray, indices: Any) -> np.ndarray:
        """The class activation maps ReLU(sum_k w_ck A_k) at feature resolution (N, h, w),
        float32: image n's last-stage activations (N, D, h, w) weighed with the head's row
        ``indices[n]``. The viewer's heat map (explain/cam.py) and the attention check
        (trust/attention.py) both start from it."""
        weight = self.head[0][np.asarray(indices, dtype=np.int64)]
        maps = np.einsum("nd,ndhw->nhw", weight, np.asarray(activations, np.float32))
        return np.maximum(maps, 0.0)

    def require_network(self, what: str) -> nn.Module:
        """The torch network, or a clear error in the light build, which has none."""
        network = self.network
        if network is None:
            raise ModelError(f"{what}: {FULL_BUILD_HINT}")
        return network

    def preprocess(self, xray: XRay) -> np.ndarray:
        return self.preprocessing(xray)

    def predict(self, xray: XRay) -> Prediction:
        start = time.perf_counter()
        probs = self.predict_tensors(self.preprocess(xray)[None])[0]
        return self.prediction_from(probs, time.perf_counter() - start)

    def predict_tensors(self, batch: Any) -> np.ndarray:
        """Probabilities (N, classes) as float64 for preprocessed inputs (N, C, H, W)."""
        return self.probabilities(self.logits(batch))

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) as float64 from raw logits, with the card's temperature."""
        return softmax(logits, self.card.temperature)

    def logits(self, batch: Any) -> np.ndarray:
        """Raw float32 logits (before temperature) of inputs (N, C, H, W), numpy or torch."""
        return self.backend.run(batch, activations=False).logits

    def logits_and_features(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """Raw float32 logits and the pooled features that fed the linear head, from one
        forward pass: the out-of-distribution score reuses them instead of a second pass."""
        out = self.backend.run(batch, activations=False)
        return out.logits, out.features

    def forward(self, batch: Any, activations: bool = True) -> ForwardOutputs:
        """Logits, pooled features and (``activations``) the last stage's output of one
        forward pass over preprocessed inputs (N, C, H, W)."""
        return self.backend.run(batch, activations)

    def prediction_from(self, probs: np.ndarray, seconds: float = 0.0) -> Prediction:
        """The named result for one row of probabilities; refuses NaN or infinity, which
        argmax would otherwise report as the first class ("normal")."""
        if not np.all(np.isfinite(probs)):
            raise NonFiniteOutputError(
                "the model's output is not a number (NaN or infinity); the image's pixel "
                "values are probably corrupt, so no result is given"
            )
        ids = self.class_ids
        probabilities = {cid: float(p) for cid, p in zip(ids, probs, strict=True)}
        return Prediction(
            probabilities=probabilities,
            predicted=ids[int(np.argmax(probs))],
            model=self.card.label,
            device=self.device.label,
            seconds=seconds,
            display_names=self.card.display_names,
        )
