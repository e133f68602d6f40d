"""Out-of-distribution statistics and per-pool calibration notes for a new model.

The card of every model the trainer makes carries them, so the OOD warning works for
fine-tuned and from-scratch models as for the bundled ones: pooled penultimate features
of (a sample of) the training split give the class means and the shared covariance, the
validation split gives the threshold. Kept apart from the metrics code on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xraydesk.model.card import ModelCard
from xraydesk.trainer.config import RunContext, Trained
from xraydesk.trainer.progress import TrainingStage
from xraydesk.trust.calibration import add_calibration_limitations
from xraydesk.trust.ood import OODStatistics, fit

if TYPE_CHECKING:
    from torch import nn

    from xraydesk.model.device import DeviceChoice
    from xraydesk.model.preprocessing import Preprocessing
    from xraydesk.trainer.dataset import Sample
    from xraydesk.trainer.progress import Reporter

MAX_TRAIN_IMAGES = 3000  # a stated sample bounds the extra pass (about 40 s on 2 CPU cores)


def add_trust_statistics(ctx: RunContext, trained: Trained, card: ModelCard) -> None:
    """Compute the OOD statistics with the trained network and store them in ``card``, and
    name in its limitations any pool whose calibration error is much above the overall.

    The statistics are skipped (the card then says it has none) when too few images are
    available to estimate them, e.g. a toy run with a handful of images.
    """
    add_calibration_limitations(card.limitations, card.metrics)
    stats = ood_statistics(ctx, trained)
    if stats is not None:
        stats.store(card)


def ood_statistics(ctx: RunContext, trained: Trained) -> OODStatistics | None:
    train_idx = ctx.indices("train")
    val_idx = ctx.indices("val")
    if len(train_idx) < 2 * len(ctx.classes) or len(val_idx) < 2:
        return None
    train_idx = training_sample(train_idx, ctx.config.seed)
    ctx.reporter.emit(TrainingStage.EVALUATING, message="Out-of-distribution statistics")
    if trained.features is not None:  # quick mode: its features are the final backbone's
        train, val = trained.features[train_idx], trained.features[val_idx]
    else:
        assert trained.network is not None
        batch = max(1, int(getattr(ctx.config, "batch", 32)))
        train, val = network_features(
            trained.network,
            ctx.samples,
            (train_idx, val_idx),
            ctx.prep,
            ctx.device,
            batch,
            ctx.reporter,
        )
    return statistics_from_features(
        train,
        ctx.labels[train_idx],
        val,
        len(ctx.classes),
        "at training time (xraydesk.trainer.ood_stats)",
    )


def training_sample(train_idx: list[int], seed: int) -> list[int]:
    """At most ``MAX_TRAIN_IMAGES`` of the training split, drawn with ``seed``."""
    if len(train_idx) <= MAX_TRAIN_IMAGES:
        return train_idx
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(train_idx, MAX_TRAIN_IMAGES, replace=False).tolist())


def network_features(
    network: nn.Module,
    samples: Sequence[Sample],
    parts: Sequence[Sequence[int]],
    prep: Preprocessing,
    device: DeviceChoice,
    batch: int,
    reporter: Reporter | None = None,
) -> list[np.ndarray]:
    """Pooled penultimate features of each part of ``samples`` (the training sample and
    the validation split): the statistics' inputs, from a trained or an averaged network."""
    from xraydesk.model.network import feature_extractor
    from xraydesk.trainer.forward import run_module

    extractor = feature_extractor(network)
    return [
        run_module(extractor, samples, list(part), prep, device, batch, reporter)[0]
        for part in parts
    ]


def statistics_from_features(
    train: np.ndarray, labels: np.ndarray, val: np.ndarray, num_classes: int, computed: str
) -> OODStatistics | None:
    """The statistics from pooled training features (with their labels) and validation
    features, or None when too few finite ones remain to estimate them. Shared by the
    desktop trainer and Spark's train-quick, whose executors already made the features."""
    finite = np.isfinite(train).all(axis=1)
    train, labels = train[finite], labels[finite]
    val = val[np.isfinite(val).all(axis=1)]
    if len(train) < 2 * num_classes or len(val) < 2:
        return None
    stats = fit(train, labels, val, num_classes)
    stats.details["computed"] = computed
    return stats
