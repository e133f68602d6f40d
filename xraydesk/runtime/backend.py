"""The one interface every inference runtime offers: a preprocessed batch in, the three
tensors of one forward pass out.

The viewer needs the logits (probabilities), the pooled features (the out-of-distribution
score of ``xraydesk.trust``) and the last stage's activations (the class activation map);
the batch engine needs the first two. Every backend, torch or an exported graph, yields
all three from one pass, so no caller runs the network twice and no caller knows which
runtime it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from xraydesk.errors import ModelError
from xraydesk.runtime.names import RUNTIME_NAMES

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16", "int8"]


class RuntimeUnavailable(ModelError):
    """A runtime was asked for that is not installed, cannot run here or failed to load."""


@dataclass(frozen=True)
class Outputs:
    """One forward pass, float32 numpy arrays (whatever ran it: torch or an exported graph,
    so the callers work the same in the light build, which has no torch)."""

    logits: np.ndarray  # (N, classes), before temperature
    features: np.ndarray  # (N, D): the pooled input of the linear head
    activations: np.ndarray | None  # (N, D, h, w): the last stage's output; None if not kept

    @classmethod
    def joined(cls, parts: Sequence[Outputs]) -> Outputs:
        """The passes of consecutive slices of one batch as one, in order (activations
        only where every part kept them)."""
        maps = [part.activations for part in parts]
        return cls(
            np.concatenate([part.logits for part in parts]),
            np.concatenate([part.features for part in parts]),
            np.concatenate(maps) if all(m is not None for m in maps) else None,  # type: ignore[arg-type]
        )


class Backend(ABC):
    """A network ready to run. ``run`` is thread-safe (each backend sees to it)."""

    runtime: str  # one of RUNTIMES
    precision: Precision
    mode: str | None = None  # OpenVINO's performance hint; None for runtimes without one

    @abstractmethod
    def run(self, batch: np.ndarray | torch.Tensor, activations: bool = True) -> Outputs:
        """The forward pass of preprocessed inputs (N, C, H, W) float32."""

    def in_mode(self, mode: str) -> Backend:
        """The same network compiled for OpenVINO's ``mode`` (a new backend: the batch
        engine's twin, ``batch_mode``); itself where the runtime has no modes. Each
        backend builds its own twin, so no caller needs to know how it was made."""
        return self

    @property
    def label(self) -> str:
        """What users see, e.g. "OpenVINO, CPU, bf16"."""
        return f"{RUNTIME_NAMES[self.runtime]}, CPU, {self.precision}"
