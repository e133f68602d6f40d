"""Training settings, and what a running training step needs to know.

``TrainConfig`` is what a user chooses (CLI flags, wizard fields); it is saved with the
run (so ``resume`` continues with exactly the same settings) and with the model card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from xraydesk.model.card import Population
from xraydesk.model.device import DEVICE_CHOICES, DeviceChoice
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.trainer.augment import AugmentConfig
from xraydesk.trainer.checkpoint import RunDir
from xraydesk.trainer.dataset import MIN_PER_CLASS, Sample
from xraydesk.trainer.progress import Reporter, TrainingError
from xraydesk.trainer.split import DEFAULT_FRACTIONS

if TYPE_CHECKING:
    from torch import nn

    from xraydesk.model.card import ModelCard


class TrainingMode(StrEnum):
    """Quick: a new head on the base model's features; full: every layer trained."""

    QUICK = "quick"
    FULL = "full"


MODES = tuple(m.value for m in TrainingMode)  # plain strings: argparse choices, messages
SCHEDULES = ("cosine", "onecycle")
IMBALANCE = ("weights", "sampling", "groups", "pools", "none")
SCRATCH = "scratch"
LR_SCRATCH = 1e-3  # AdamW from random weights, with warm-up
LR_FINE_TUNE = 2e-4  # gentler: keep what the base model knows
MAX_EPOCHS = 1000  # above: a typo (--epochs 1e12 showed an ETA of 200 million hours)


@dataclass
class TrainConfig:
    data: list[str]  # PATH or NAME=PATH per source (folder or CSV manifest)
    name: str
    mode: str = TrainingMode.QUICK  # a TrainingMode; plain text as read from JSON
    epochs: int = 10
    lr: float | None = None  # None: LR_SCRATCH or LR_FINE_TUNE
    batch: int = 32
    size: int | None = None  # None: the base model's size, or 224 from scratch
    base: str | None = None  # model name or card path, "scratch", None: the default model
    device: str = "auto"
    seed: int = 0  # the patient-grouped split; also the run's own randomness unless run_seed
    # The run's own randomness (initial weights or head, epoch order, augmentation, mixing);
    # None: ``seed``. The split stays on ``seed``, so runs that differ only here are
    # compared on the same test films: how far one recipe moves between two runs.
    run_seed: int | None = None
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    label_map: dict[str, str] = field(default_factory=dict)  # e.g. bacterial -> pneumonia
    classes: list[str] | None = None  # class order; other labels are left out
    class_names: dict[str, str] = field(default_factory=dict)
    equalize: bool | None = None  # None: as the base model (off from scratch)
    resize: str | None = None  # "stretch" or "letterbox"; None: as the base model
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    weight_decay: float = 0.05
    imbalance: str = "weights"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    min_per_class: int = MIN_PER_CLASS
    checkpoint_minutes: float = 5.0  # also save mid-epoch this often (long epochs)
    # Full mode, off by default (trainer/ema.py, trainer/mix.py): an EMA of the weights,
    # validated, selected and shipped instead of the live ones, from ``ema_start`` (share
    # of the run's steps) on; mixup / CutMix with soft targets on a share ``mix_p`` of the
    # batches (Beta(alpha, alpha) mixing weight; 0 turns each off).
    ema_decay: float = 0.0
    ema_start: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_p: float = 1.0
    version: str = "1.0"
    description: str = ""
    # Ages the new model is for, "1-5" or "1-5,18-" (years); None: the base model's
    # population (a fine-tuned model inherits it), or not stated from scratch.
    population_age: str | None = None

    def validate(self) -> None:
        problems = []
        if not self.data:
            problems.append("no data was given")
        if self.mode not in MODES:
            problems.append(f"mode must be one of {', '.join(MODES)} (got {self.mode!r})")
        if self.epochs < 1:
            problems.append("epochs must be at least 1")
        elif self.epochs > MAX_EPOCHS:
            problems.append(f"epochs must be at most {MAX_EPOCHS} (got {self.epochs})")
        if self.seed < 0 or (self.run_seed is not None and self.run_seed < 0):
            problems.append("seeds must be whole numbers from 0 up")
        if self.batch < 2:
            problems.append("batch size must be at least 2")
        if self.size is not None and not 32 <= self.size <= 1024:
            problems.append("image size must be between 32 and 1024 pixels")
        if self.lr is not None and not 0 < self.lr < 1:
            problems.append("learning rate must be between 0 and 1")
        if self.device not in DEVICE_CHOICES:
            problems.append(f"device must be one of {', '.join(DEVICE_CHOICES)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}")
        if self.imbalance not in IMBALANCE:
            problems.append(f"imbalance handling must be one of {', '.join(IMBALANCE)}")
        if self.resize not in (None, "stretch", "letterbox"):
            problems.append("resize must be 'stretch' or 'letterbox'")
        if not 0 <= self.label_smoothing < 1:
            problems.append("label smoothing must be in [0, 1)")
        if not (self.ema_decay == 0 or 0 < self.ema_decay < 1) or not 0 <= self.ema_start < 1:
            problems.append("EMA decay must be 0 (off) or in (0, 1), its start in [0, 1)")
        if min(self.mixup_alpha, self.cutmix_alpha) < 0 or not 0 < self.mix_p <= 1:
            problems.append("mixup/CutMix alphas must be >= 0 and their share in (0, 1]")
        if self.mode == TrainingMode.QUICK and (
            self.ema_decay or self.mixup_alpha or self.cutmix_alpha
        ):
            problems.append("EMA, mixup and CutMix train every layer: they need full mode")
        if self.population_age is not None:
            try:
                Population.parse_ages(self.population_age)
            except ValueError as exc:
                problems.append(f"population: {exc}")
        if problems:
            raise TrainingError("Invalid training settings: " + "; ".join(problems) + ".")

    @property
    def training_seed(self) -> int:
        """The seed of the run's own randomness (not of its split)."""
        return self.seed if self.run_seed is None else self.run_seed

    def learning_rate(self, scratch: bool) -> float:
        return self.lr if self.lr is not None else (LR_SCRATCH if scratch else LR_FINE_TUNE)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fractions"] = list(self.fractions)
        out["augment"] = self.augment.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "fractions" in values:
            values["fractions"] = tuple(values["fractions"])
        if isinstance(values.get("augment"), dict):
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        return cls(**values)


@dataclass
class RunContext:
    """Everything a training mode needs, assembled by the engine."""

    config: TrainConfig
    run: RunDir
    samples: list[Sample]
    splits: list[str]
    classes: list[str]
    prep: Preprocessing
    network: nn.Module | None  # None in the light build (no torch): quick mode from ``base``
    scratch: bool
    device: DeviceChoice
    reporter: Reporter
    finish_early: bool = False  # skip the remaining epochs, finish from the best checkpoint
    base: ModelCard | None = None  # the model fine-tuned (None: from scratch)

    def indices(self, split: str) -> list[int]:
        return [i for i, sp in enumerate(self.splits) if sp == split]

    @property
    def labels(self) -> np.ndarray:
        index = {cid: k for k, cid in enumerate(self.classes)}
        return np.array([index[s.label] for s in self.samples], dtype=np.int64)


@dataclass
class Trained:
    """What a training mode hands back for evaluation and saving."""

    network: nn.Module | None  # None: the weights are ``state`` (light-build quick mode)
    val_logits: np.ndarray
    test_logits: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, cause) mid-run
    state: dict[str, np.ndarray] | None = None  # the weights, where there is no network
    # Every sample's pooled features (NaN rows: failed to load) where the mode computed
    # them with the final backbone (quick mode): the OOD statistics reuse them.
    features: np.ndarray | None = None
