"""A loaded model ready to classify radiographs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xraydesk.errors import ModelError
from xraydesk.imaging.xray import XRay
from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice, select_device
from xraydesk.model.network import cam_target_layer, classifier_head
from xraydesk.model.storage import load_network
from xraydesk.runtime.backend import Backend, Outputs


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
    """Network + card + device. Thread-safe: one forward pass (or Grad-CAM) at a time.

    The lock matters because Grad-CAM hooks the network: a prediction running in another
    thread at the same moment would otherwise feed its activations into the heat map.
    """

    def __init__(
        self,
        network: nn.Module,
        card: ModelCard,
        device: DeviceChoice,
        runtime: Backend | None = None,
    ) -> None:
        """``runtime``: an exported CPU runtime (``xraydesk.runtime``) that runs the forward
        passes instead of ``network``; Grad-CAM and training still use ``network``."""
        self.card = card
        self.device = device if runtime is None else replace(device, label=runtime.label)
        self.preprocessing = card.preprocessing
        self.network = network.to(device.device, memory_format=device.memory_format).eval()
        self.runtime = runtime
        self.lock = threading.RLock()

    @classmethod
    def load(
        cls,
        card: ModelCard | str | Path,
        device: str | DeviceChoice = "auto",
        runtime: str | None = None,
    ) -> Classifier:
        """``runtime``: auto, torch, onnxruntime or openvino (None: ``XRAYDESK_RUNTIME``,
        else auto); see ``xraydesk.runtime.select``."""
        from xraydesk.runtime.select import select_backend

        if not isinstance(card, ModelCard):
            card = ModelCard.read(card)
        choice = device if isinstance(device, DeviceChoice) else select_device(device)
        network = load_network(card)
        backend = select_backend(network, card, choice, runtime)
        return cls(network, card, choice, None if backend.runtime == "torch" else backend)

    @property
    def class_ids(self) -> list[str]:
        return self.card.class_ids

    def preprocess(self, xray: XRay) -> torch.Tensor:
        return self.preprocessing(xray)

    def predict(self, xray: XRay) -> Prediction:
        start = time.perf_counter()
        probs = self.predict_tensors(self.preprocess(xray)[None])[0]
        return self.prediction_from(probs, time.perf_counter() - start)

    def predict_tensors(self, batch: torch.Tensor) -> np.ndarray:
        """Probabilities (N, classes) as float64 for preprocessed inputs (N, C, H, W)."""
        return self.probabilities(self.logits(batch))

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """Probabilities (N, classes) as float64 from raw logits, with the card's temperature."""
        return torch.softmax(logits.double() / self.card.temperature, dim=1).numpy()

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw float32 logits on the CPU (before temperature)."""
        if self.runtime is not None:
            return self.runtime.run(batch, activations=False).logits
        batch = batch.to(self.device.device, non_blocking=True).contiguous(
            memory_format=self.device.memory_format
        )
        with self.lock, torch.inference_mode(), self.device.autocast():
            logits = self.network(batch)
        return logits.float().cpu()

    def logits_and_features(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw float32 logits and the pooled features that fed the linear head, from one
        forward pass: the out-of-distribution score reuses them instead of a second pass."""
        out = self.forward(batch, activations=False)
        return out.logits, out.features

    def forward(self, batch: torch.Tensor, activations: bool = True) -> ForwardOutputs:
        """Logits, pooled features and (``activations``) the last stage's output of one
        forward pass over preprocessed inputs (N, C, H, W).

        Forward hooks on the head and the last stage catch the tensors on their way
        through; they are removed in ``finally`` under the lock, so no hook outlives the
        call and no other thread's pass runs while they are in place.
        """
        if self.runtime is not None:  # no hooks on the network: the lock is not needed
            return self.runtime.run(batch, activations)
        batch = batch.to(self.device.device, non_blocking=True).contiguous(
            memory_format=self.device.memory_format
        )
        features: list[torch.Tensor] = []
        stage: list[torch.Tensor] = []
        head = classifier_head(self.network)
        with self.lock, torch.inference_mode(), self.device.autocast():
            hooks = [head.register_forward_pre_hook(lambda _m, args: features.append(args[0]))]
            if activations:
                last = cam_target_layer(self.network)
                hooks.append(last.register_forward_hook(lambda _m, _a, out: stage.append(out)))
            try:
                logits = self.network(batch)
            finally:
                for hook in hooks:
                    hook.remove()
        kept = stage[0].float().cpu().contiguous() if activations else None
        return ForwardOutputs(logits.float().cpu(), features[0].float().cpu(), kept)

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
