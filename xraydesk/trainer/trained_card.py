"""The card and the files of a newly trained model, whichever engine trained it.

``xraydesk train`` (torch) and ``xraydesk spark train-quick`` (Spark MLlib) fit their
models differently but must ship the same kind of model: the same limitations (where the
data came from, a small test split), the same population rule, the same metrics layout,
the same extras beside the card, and the card written last (its appearing is what makes
the model visible in the library). Each engine adds only what is its own under
``training``.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xraydesk.files import write_atomic
from xraydesk.model.card import ClassInfo, ModelCard, Population
from xraydesk.model.class_groups import inherited_groups
from xraydesk.model.operating_rule import OperatingRule
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.saving import save_model, save_state
from xraydesk.trainer.config import TrainConfig, TrainingMode
from xraydesk.trainer.metrics import MIN_TEST_PER_CLASS
from xraydesk.trainer.split import SPLIT_FILE

if TYPE_CHECKING:
    from torch import nn

VALIDATION_KEYS = ("n", "accuracy", "macro_auc", "ece", "nll")
EXTRA_FILES = {
    "split": SPLIT_FILE,
    "history": "history.json",
    "evaluation": "evaluation.json",
    "problems": "problems.txt",
}


@dataclass(frozen=True)
class TrainedModel:
    """What any engine knows about a model it has just fitted, for its card."""

    config: TrainConfig
    classes: Sequence[str]
    names: Sequence[str]  # display names, in class order
    prep: Preprocessing
    temperature: float
    calibration: dict[str, Any]  # metrics.choose_temperature's account of the temperature
    test: dict[str, Any]  # metrics.evaluate on the test split (curves are left out)
    validation: dict[str, Any]
    images: int  # images the model was trained and evaluated on
    pools: str  # the data sources, comma-separated
    how: str  # "`xraydesk train` (full mode)", for the default description
    base: ModelCard | None = None
    # the confidence below which it names no class (from its validation split)
    operating_rule: OperatingRule | None = None


def trained_card(model: TrainedModel, training: dict[str, Any]) -> ModelCard:
    """The card (weights not yet written); ``training`` is the engine's own record, to
    which the names of the extra files are added."""
    config = model.config
    limitations = data_limitations(config, model.base, model.images, model.pools)
    small = small_test_warning(model.test)
    if small:
        limitations.append(small)
    description = config.description or (
        f"Trained with {model.how} on {model.pools}; classes: {', '.join(model.names)}."
    )
    return ModelCard(
        name=config.name,
        version=config.version,
        classes=[ClassInfo(c, n) for c, n in zip(model.classes, model.names, strict=True)],
        preprocessing=model.prep,
        weights_file="",
        weights_sha256="",
        temperature=model.temperature,
        description=description,
        limitations=limitations,
        training={**training, "files": {"folder": config.name, **EXTRA_FILES}},
        metrics={
            "test": {k: v for k, v in model.test.items() if k != "roc"},
            "validation": {k: model.validation[k] for k in VALIDATION_KEYS},
            "calibration": model.calibration,
        },
        base_model=model.base.label if model.base else None,
        created=_dt.date.today().isoformat(),
        population=card_population(config, model.base),
        operating_rule=model.operating_rule,
        class_groups=inherited_groups(model.base.class_groups, model.classes)
        if model.base is not None
        else (),
    )


def save_trained_model(
    directory: Path,
    card: ModelCard,
    weights: nn.Module | Mapping[str, np.ndarray],
    write_split_file: Callable[[Path], None],
    history: list[dict[str, Any]],
    evaluation: dict[str, Any],
    problems: list[str],
) -> Path:
    """Extras first (split, history, evaluation with curves, problems), card last.
    ``weights``: the trained network, or its weights as numpy arrays (light build)."""
    extras = directory / card.name
    if extras.exists():
        shutil.rmtree(extras)
    extras.mkdir(parents=True)
    try:  # a model that failed to save leaves no folder of extras behind either
        write_split_file(extras / SPLIT_FILE)
        write_atomic(extras / EXTRA_FILES["history"], json.dumps(history, indent=2) + "\n")
        write_atomic(extras / EXTRA_FILES["evaluation"], json.dumps(evaluation, indent=2) + "\n")
        # a file name that is not UTF-8 (bytes on Linux) is written as \udcXX, not refused
        text = "".join(f"{line}\n" for line in problems).encode("utf-8", "backslashreplace")
        write_atomic(extras / EXTRA_FILES["problems"], text)
        if isinstance(weights, Mapping):
            return save_state(weights, card, directory)
        return save_model(weights.to("cpu").float().eval(), card, directory)
    except BaseException:
        shutil.rmtree(extras, ignore_errors=True)
        raise


def small_test_warning(test: dict[str, Any]) -> str | None:
    """A limitation line when a class has fewer than ``MIN_TEST_PER_CLASS`` test images."""
    per_class = test.get("per_class", {})
    if not per_class:
        return None
    cid, metrics = min(per_class.items(), key=lambda item: item[1]["support"])
    if metrics["support"] >= MIN_TEST_PER_CLASS:
        return None
    return (
        f"Small test split: {test['n']} images, only {metrics['support']} of class {cid} "
        f"(fewer than {MIN_TEST_PER_CLASS} per class). Its metrics are too uncertain to "
        "compare models by; read them with their 95 % intervals."
    )


def card_population(config: TrainConfig, base: ModelCard | None) -> Population:
    """The ages the user stated, else the base model's population (fine-tuning on other
    patients is what --population-age is for), else not stated."""
    if config.population_age is not None:
        return Population.parse_ages(config.population_age, "as stated when training")
    return base.population if base is not None else Population()


def data_limitations(
    config: TrainConfig, base: ModelCard | None, images: int, pools: str
) -> list[str]:
    """What the card must warn about: where the data came from and how it was trained."""
    limitations = [
        f"Trained on {images} images from {pools}. Accuracy on images from "
        "other hospitals, scanners or populations is unknown.",
        "Test metrics come from a held-out part of the same sources; they overstate "
        "performance on data from elsewhere.",
    ]
    if base is None:
        limitations.append("Trained from random initialisation (no pretrained weights).")
        if config.mode == TrainingMode.QUICK:
            limitations.append(
                "Quick mode on a random backbone: only the last layer learned from the data, "
                "so expect modest accuracy."
            )
    return limitations
