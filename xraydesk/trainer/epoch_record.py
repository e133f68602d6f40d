"""One finished epoch of full training, as ``history.json`` and the progress events show it.

Typed inside the engine; ``to_dict`` gives the row written to ``history.json``, kept in
``last.pt`` (so a resumed run continues its history) and sent with the epoch's progress
event, with the same keys as always, so files written by earlier versions still read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's training images
    train_acc: float
    val_loss: float  # negative log-likelihood on the validation split
    val_acc: float
    lr: float  # the learning rate at the epoch's end
    seconds: float  # training and validation together
    images_per_s: float | None  # training speed (None before any step was measured)

    def to_dict(self) -> dict[str, Any]:
        """The ``history.json`` row."""
        return asdict(self)
