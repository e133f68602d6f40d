"""Which training images an epoch sees, and how much each class weighs in the loss.

Split out of full mode: the order of an epoch comes from (seed, epoch) alone, so a
resumed run draws the same batches; balancing classes or pools within a class is how
the engine keeps one large pool from deciding what a class looks like.
"""

from __future__ import annotations

import numpy as np
import torch


def epoch_order(
    train_idx: list[int],
    labels: np.ndarray,
    epoch: int,
    seed: int,
    imbalance: str,
    sources: np.ndarray | None = None,
) -> list[int]:
    """The epoch's sample order: a seeded shuffle, or a balanced draw with replacement.

    ``sampling`` balances classes. ``groups`` also balances the pools within each class,
    tempered by a square root (pool share of a class proportional to sqrt of its size):
    when one pool holds nearly all of a class (all the children's pneumonia, say), a plain
    class balance lets the model learn "this hospital" for "this disease"; drawing the
    small pools more often takes part of that shortcut away without repeating a few
    hundred images until they are memorised. ``pools`` balances the pools within each
    class fully (adult pneumonia from ozturk-nih weighs as much as the children's), at the
    price of repeating small pools more often.
    """
    rng = np.random.default_rng([seed, epoch])
    idx = np.asarray(train_idx)
    if imbalance == "sampling":
        counts = np.bincount(labels[idx])
        p = 1.0 / counts[labels[idx]]
        return idx[rng.choice(len(idx), size=len(idx), p=p / p.sum())].tolist()
    if imbalance in ("groups", "pools"):
        if sources is None:
            raise ValueError("balancing pools needs the pool of every sample")
        power = 0.5 if imbalance == "groups" else 0.0
        p = group_balanced_probabilities(labels[idx], sources[idx], power)
        return idx[rng.choice(len(idx), size=len(idx), p=p)].tolist()
    return idx[rng.permutation(len(idx))].tolist()


def group_balanced_probabilities(
    labels: np.ndarray, sources: np.ndarray, power: float = 0.5
) -> np.ndarray:
    """Per-sample draw probabilities: classes equal, pools within a class by size**power
    (0.5: square-root tempered; 0: every pool of a class equal)."""
    p = np.zeros(len(labels), dtype=np.float64)
    classes = np.unique(labels)
    for c in classes:
        in_class = labels == c
        pools, counts = np.unique(sources[in_class], return_counts=True)
        weights = counts.astype(np.float64) ** power
        shares = weights / weights.sum()
        for pool, count, share in zip(pools, counts, shares, strict=True):
            p[in_class & (sources == pool)] = share / count / len(classes)
    return p / p.sum()


def class_weights(train_labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """n / (K * n_c): each class contributes equally to the loss."""
    counts = np.bincount(train_labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(train_labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.as_tensor(weights, dtype=torch.float32)
