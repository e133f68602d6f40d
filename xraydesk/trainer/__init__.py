"""Training engine: fine-tune or train a classifier on labelled radiographs (no Qt here).

``train_model`` is the one entry point; ``xraydesk train`` and the app's fine-tuning
wizard are front doors over it. The names below are imported on first use (PEP 562):
``xraydesk models`` reads metrics helpers from this package and must not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xraydesk.lazy_exports import lazy_getattr

# public name -> the module that defines it
_EXPORTS = {
    "AugmentConfig": "xraydesk.trainer.augment",
    "TrainConfig": "xraydesk.trainer.config",
    "DatasetError": "xraydesk.trainer.dataset",
    "DatasetReport": "xraydesk.trainer.dataset",
    "DataSource": "xraydesk.trainer.dataset",
    "check_dataset": "xraydesk.trainer.dataset",
    "TrainingError": "xraydesk.trainer.progress",
    "TrainProgress": "xraydesk.trainer.progress",
    "TrainResult": "xraydesk.trainer.training",
    "check_data": "xraydesk.trainer.training",
    "estimate_seconds": "xraydesk.trainer.training",
    "train_model": "xraydesk.trainer.training",
}

if TYPE_CHECKING:
    from xraydesk.trainer.augment import AugmentConfig
    from xraydesk.trainer.config import TrainConfig
    from xraydesk.trainer.dataset import DatasetError, DatasetReport, DataSource, check_dataset
    from xraydesk.trainer.progress import TrainingError, TrainProgress
    from xraydesk.trainer.training import TrainResult, check_data, estimate_seconds, train_model


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = [
    "AugmentConfig",
    "DataSource",
    "DatasetError",
    "DatasetReport",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingError",
    "check_data",
    "check_dataset",
    "estimate_seconds",
    "train_model",
]
