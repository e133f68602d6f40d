"""Weight averaging for full training: an exponential moving average (EMA) of the weights.

Why: the weights at the end of one epoch are one noisy point of a trajectory; their
running average over the last steps usually generalises a little better (smoother
minima) and varies less from run to run, at the cost of one more copy of the network.
The issue's recipe table tries it against the held-out sources before it is kept.

Where it hooks into the loop (``full._FullRun``), at four defined points:

- after every optimiser step, ``update(network, step)`` folds the live weights in
  (nothing before ``start_step``: the first epochs' random weights are not averaged);
- validation, the choice of the best epoch and ``best.pt`` use ``evaluated(network)``:
  the average once it has started, the live network before;
- ``last.pt`` holds ``state_dict()`` beside the live model and the optimiser, and a
  resumed run restores it with ``load_state_dict``, so a run killed at any step ends
  with the same average as one that was never stopped;
- the finished model is the best epoch's ``best.pt``, hence the averaged weights.

Batch norm: its running mean and variance are averaged with the same decay as the
weights (integer buffers, the batch counter, are copied), as torchvision's reference
EMA (``AveragedModel(use_buffers=True)``) and timm's ``ModelEmaV2`` do. Copying the
live buffers would pair the averaged weights with statistics of other (the live)
weights. Recomputing them exactly (``torch.optim.swa_utils.update_bn``) costs a forward
pass over the training images before every validation, to stay consistent between
epochs: a third of an epoch's time by the engine's estimate of forward-only speed.
Averaged buffers follow the trajectory the averaged weights come from, cost nothing,
and every epoch is validated the way the shipped model will run.

Decay warm-up: the update after k others uses ``min(decay, k / (k + 1))``: the average is
the plain mean of every weight since the start (as in SWA) until it spans
``1 / (1 - decay)`` steps, and an EMA of that horizon after that. So "the last epochs"
are averaged evenly in a short run (a held-out run of 5 epochs) and the start point does
not linger in a long one. (timm's ``(1 + k) / (10 + k)`` would cap the horizon near k / 9
steps, far below ``1 / (1 - decay)``, in runs as short as these.)
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

BATCH_NORM = "running mean and variance averaged with the weights (same decay)"


class WeightAverage:
    """The EMA of a network's floating-point state (weights and batch-norm statistics)."""

    def __init__(
        self, network: nn.Module, decay: float, start_step: int = 0, warmup: bool = True
    ) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the EMA decay must be in (0, 1), got {decay}")
        self.decay, self.start_step, self.warmup = decay, max(0, int(start_step)), warmup
        self.updates = 0  # averaging steps taken since start_step
        self.module = copy.deepcopy(network).eval().requires_grad_(False)

    def decay_at(self, k: int) -> float:
        """The decay of the update that follows k others (0 for the first: a copy)."""
        if k == 0:
            return 0.0
        return min(self.decay, k / (k + 1)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        """Fold the live weights in after the optimiser step ``step`` (0-based, global)."""
        if step < self.start_step:
            return
        live = network.state_dict()
        weight = 1.0 - self.decay_at(self.updates)
        for name, avg in self.module.state_dict().items():
            value = live[name].detach()
            if avg.is_floating_point():
                avg.lerp_(value.to(avg.dtype), weight)
            else:
                avg.copy_(value)
        self.updates += 1

    def evaluated(self, network: nn.Module) -> nn.Module:
        """The network to validate and keep: the average once it has started."""
        return self.module if self.updates else network

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])

    def details(self) -> dict[str, Any]:
        """What the card records of it."""
        return {
            "kind": "ema",
            "decay": self.decay,
            "start_step": self.start_step,
            "updates": self.updates,
            "batch_norm": BATCH_NORM,
        }


def weight_average(
    network: nn.Module, decay: float, start: float, total_steps: int
) -> WeightAverage | None:
    """The run's average (``start``: the share of the run's steps before it begins), or
    None when ``decay`` is 0 (off)."""
    if not decay:
        return None
    return WeightAverage(network, decay, start_step=round(start * total_steps))
