"""Training engine: fine-tune or train a classifier on labelled radiographs (no Qt here).

``train_model`` is the one entry point; ``xraydesk train`` and the app's fine-tuning
wizard are front doors over it.
"""

from xraydesk.trainer.augment import AugmentConfig
from xraydesk.trainer.config import TrainConfig
from xraydesk.trainer.dataset import DatasetError, DatasetReport, DataSource, check_dataset
from xraydesk.trainer.progress import TrainingCancelled, TrainingError, TrainProgress
from xraydesk.trainer.training import TrainResult, check_data, estimate_seconds, train_model

__all__ = [
    "AugmentConfig",
    "DataSource",
    "DatasetError",
    "DatasetReport",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingCancelled",
    "TrainingError",
    "check_data",
    "check_dataset",
    "estimate_seconds",
    "train_model",
]
