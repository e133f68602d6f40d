"""Where a training run starts: the base model, the network and its preprocessing, the name.

Shared by ``train_model``, the Spark training and the front doors (the wizard and
``xraydesk train`` check the name before a run starts, not after it has trained).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from xraydesk.model.card import ModelCard
from xraydesk.model.library import DEFAULT_MODEL, bundled_models, resolve_model, validate_name
from xraydesk.model.library import user_models as library_user_models
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.optional import FULL_BUILD_HINT, has_torch
from xraydesk.trainer.config import SCRATCH, TrainConfig, TrainingMode
from xraydesk.trainer.progress import TrainingError

if TYPE_CHECKING:
    from torch import nn


def default_base() -> ModelCard | None:
    """The default bundled model when it is installed; None means training from scratch."""
    return next((c for c in bundled_models() if c.name == DEFAULT_MODEL), None)


def resolve_base(spec: str | None) -> ModelCard | None:
    if spec is None or spec == "":
        return default_base()
    if spec == SCRATCH:
        return None
    return resolve_model(spec)


def needs_torch(config: TrainConfig) -> str | None:
    """Why this training cannot run without torch (the light build), or None when it can:
    quick mode from a base model runs on that model's exported runtime."""
    if has_torch():
        return None
    if config.mode == TrainingMode.FULL:
        return f"Full fine-tuning trains every layer with PyTorch: {FULL_BUILD_HINT}."
    if config.base == SCRATCH:
        return f"A model from scratch (random backbone) is made with PyTorch: {FULL_BUILD_HINT}."
    return None


def prepare_network(
    config: TrainConfig, classes: list[str], base: ModelCard | None
) -> tuple[nn.Module | None, Preprocessing]:
    """The network to train and its preprocessing; a new class set gets a new head.
    Without torch (the light build) there is no network: quick mode reads the base model's
    weights file and runs its exported graph."""
    if base is None:
        prep = Preprocessing(
            size=config.size or 224,
            resize=config.resize or "stretch",  # type: ignore[arg-type]
            equalize=bool(config.equalize),
        )
        import torch

        from xraydesk.model.network import build_network

        torch.manual_seed(config.training_seed)
        return build_network("resnet50", len(classes), prep.channels), prep
    prep = replace(
        base.preprocessing,
        size=config.size or base.preprocessing.size,
        resize=config.resize or base.preprocessing.resize,
        equalize=base.preprocessing.equalize if config.equalize is None else config.equalize,
    )
    if not has_torch():
        return None, prep
    import torch

    from xraydesk.model.network import replace_head
    from xraydesk.model.saving import load_network

    torch.manual_seed(config.training_seed)
    network = load_network(base)
    if base.class_ids != classes:
        if sorted(base.class_ids) == sorted(classes):  # same classes, other order: keep the head
            order = [base.class_ids.index(c) for c in classes]
            with torch.no_grad():
                network.fc.weight.copy_(network.fc.weight[order].clone())
                network.fc.bias.copy_(network.fc.bias[order].clone())
        else:
            replace_head(network, len(classes))
    return network, prep


def refuse_taken_name(name: str, output_dir: Path | None = None) -> None:
    """Never overwrite a bundled model, nor silently replace one of the user's."""
    validate_name(name)
    if output_dir is not None:
        if (Path(output_dir) / f"{name}.json").exists():
            raise TrainingError(
                f"{Path(output_dir) / name}.json already exists; choose another name."
            )
        return
    if any(card.name == name for card in bundled_models()):
        raise TrainingError(
            f"{name!r} is the name of a bundled model, and bundled models are never "
            "overwritten; choose another name."
        )
    for card in library_user_models():
        if card.name == name:
            raise TrainingError(
                f"A model named {name!r} is already in your library ({card.path}); choose "
                f"another name, or delete it first (xraydesk models delete {name})."
            )
