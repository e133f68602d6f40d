"""Mixup and CutMix: batch-level augmentation with soft targets, off by default.

Why: both make the network answer in proportion to the evidence (mixup blends two whole
films, CutMix pastes a box of one into the other) instead of latching onto one cue.
Against the source shortcut they help in a particular way: a box from a COVID-19 film of
one hospital pasted into a normal film of another carries that hospital's borders or
text with only part of the label, so "this hospital" stops predicting the class
exactly. The campaign's held-out-source table decides whether it stays.

A batch is mixed with probability ``p``; with both alphas above zero, mixup or CutMix is
chosen with even odds. The mixing weight ``lam`` is drawn from Beta(alpha, alpha) once
per batch and every image is paired with another of the same batch (a seeded
permutation), so class- or pool-balanced sampling still decides what the batch holds.
CutMix's ``lam`` is then corrected to the box's real area (the box is clipped at the
edges). Every draw comes from (seed, epoch, step): a resumed run mixes exactly as the
killed one would have. It runs on the model's input tensors (after preprocessing and
per-image augmentation); the targets are ``lam * onehot(y) + (1 - lam) * onehot(y[perm])``,
which the loss (cross-entropy with probability targets) takes as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

MIX_STREAM = 7919  # keeps mixing draws apart from the per-image augmentation streams


def one_hot(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(y, n_classes).float()


def mixup(
    x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor, n_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``lam * x + (1 - lam) * x[perm]`` and the matching soft targets."""
    mixed = x * lam + x[perm] * (1.0 - lam)
    target = one_hot(y, n_classes) * lam + one_hot(y[perm], n_classes) * (1.0 - lam)
    return mixed, target


def cutmix(
    x: torch.Tensor,
    y: torch.Tensor,
    box: tuple[int, int, int, int],
    perm: torch.Tensor,
    n_classes: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` with the box (top, bottom, left, right) taken from ``x[perm]``; the targets
    weigh each image by the share of pixels it keeps."""
    top, bottom, left, right = box
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[perm][:, :, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (x.shape[-2] * x.shape[-1])
    target = one_hot(y, n_classes) * lam + one_hot(y[perm], n_classes) * (1.0 - lam)
    return mixed, target


def cut_box(rng: np.random.Generator, lam: float, height: int, width: int) -> tuple[int, ...]:
    """A box of about ``1 - lam`` of the image, centred anywhere, clipped at the edges."""
    ratio = np.sqrt(1.0 - lam)
    h, w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([cy - h // 2, cy + h // 2], 0, height)
    left, right = np.clip([cx - w // 2, cx + w // 2], 0, width)
    return int(top), int(bottom), int(left), int(right)


@dataclass(frozen=True)
class BatchMix:
    """The run's mixing settings; ``apply`` mixes one training batch."""

    mixup_alpha: float
    cutmix_alpha: float
    p: float
    n_classes: int
    seed: int

    def apply(
        self, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and soft targets (N, K) for the step ``step`` of ``epoch``; a batch left
        unmixed gets one-hot targets."""
        rng = np.random.default_rng([self.seed, epoch, step, MIX_STREAM])
        if len(y) < 2 or rng.random() >= self.p:
            return x, one_hot(y, self.n_classes)
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or rng.random() < 0.5)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(rng.beta(alpha, alpha))
        perm = torch.as_tensor(rng.permutation(len(y)), device=y.device)
        if use_cutmix:
            box = cut_box(rng, lam, x.shape[-2], x.shape[-1])
            return cutmix(x, y, box, perm, self.n_classes)
        return mixup(x, y, lam, perm, self.n_classes)

    def details(self) -> dict[str, Any]:
        """What the card records of it."""
        return {"mixup_alpha": self.mixup_alpha, "cutmix_alpha": self.cutmix_alpha, "p": self.p}


def batch_mix(
    mixup_alpha: float, cutmix_alpha: float, p: float, n_classes: int, seed: int
) -> BatchMix | None:
    """The run's mixing, or None when both alphas are 0 (off)."""
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return None
    return BatchMix(mixup_alpha, cutmix_alpha, p, n_classes, seed)
