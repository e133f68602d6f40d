"""Training engine: fine-tune or train a classifier on labelled radiographs (no Qt here).

``train_model`` is the one entry point; ``xraydesk train`` and the app's fine-tuning
wizard are front doors over it.
"""

from xraydesk.train.augment import AugmentConfig
from xraydesk.train.config import TrainConfig
from xraydesk.train.dataset import DatasetError, DatasetReport, DataSource, check_dataset
from xraydesk.train.engine import TrainResult, check_data, estimate_seconds, train_model
from xraydesk.train.progress import Progress, TrainingCancelled, TrainingError

__all__ = [
    "AugmentConfig",
    "DataSource",
    "DatasetError",
    "DatasetReport",
    "Progress",
    "TrainConfig",
    "TrainResult",
    "TrainingCancelled",
    "TrainingError",
    "check_data",
    "check_dataset",
    "estimate_seconds",
    "train_model",
]
