"""Finding models: bundled ones (models/ in a checkout, packed in a wheel or frozen app)
and the user's library (fine-tuned models in the user data folder)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from xraydesk import paths
from xraydesk.errors import ModelError, NoModelError
from xraydesk.model.card import ModelCard

log = logging.getLogger(__name__)

DEFAULT_MODEL = "chest-3class"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NO_MODEL_MESSAGE = (
    "No model is installed: this copy of XRayDesk has no bundled model in {bundled} and the "
    "user library {user} is empty. Train one with `xraydesk train`, or pass --model PATH to a "
    "model card (.json)."
)


def _scan(directory: Path, source: str) -> tuple[list[ModelCard], list[str]]:
    """The readable cards in a folder, and one message per file that is not one.

    One bad file (a stray ``notes.json``, a damaged or edited card) must not hide the
    others or stop the app: it is skipped and named.
    """
    cards: list[ModelCard] = []
    problems: list[str] = []
    if not directory.is_dir():
        return cards, problems
    for path in sorted(directory.glob("*.json")):
        try:
            cards.append(ModelCard.read(path, source=source))
        except ModelError as exc:
            log.info("skipping %s", exc)  # front doors name these through skipped_cards()
            problems.append(str(exc))
    return cards, problems


def bundled_models() -> list[ModelCard]:
    return _scan(paths.bundled_models_dir(), "bundled")[0]


def user_models() -> list[ModelCard]:
    return _scan(paths.user_models_dir(), "user")[0]


def skipped_cards() -> list[str]:
    """Why each file in the model folders that looks like a card was not listed."""
    return [
        problem
        for directory, source in (
            (paths.bundled_models_dir(), "bundled"),
            (paths.user_models_dir(), "user"),
        )
        for problem in _scan(directory, source)[1]
    ]


def list_models() -> list[ModelCard]:
    """Bundled models first (default first among them), then the user's, by name."""
    bundled = sorted(bundled_models(), key=lambda c: (c.name != DEFAULT_MODEL, c.name))
    return bundled + user_models()


def card_files() -> list[Path]:
    """The card file of every installed model, bundled and the user's: files a save
    must never replace (a report saved as models/NAME.json replaced a model's card)."""
    return [Path(card.path) for card in list_models() if card.path is not None]


# Names Windows reserves for devices, with any extension ("CON", "nul.v2", "COM1"): a
# model library copied to, or made on, a Windows workstation could not hold their files.
_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{port}{n}" for port in ("COM", "LPT") for n in range(10)}
)


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name) or name.endswith("."):
        raise ModelError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit and not ending with '.'"
        )
    if name.split(".")[0].upper() in _DEVICE_NAMES:
        raise ModelError(
            f"invalid model name {name!r}: {name.split('.')[0]} is a device name on Windows, "
            "where its files could not be written; choose another name"
        )
    return name


def resolve_model(spec: str | Path | None = None) -> ModelCard:
    """A model card from a name, a path to a card (or its folder), or None for the default."""
    if spec is not None:
        path = Path(spec)
        if path.suffix == ".json" or path.is_file():
            return ModelCard.read(path)
        if path.is_dir() and len(list(path.glob("*.json"))) == 1:
            return ModelCard.read(next(path.glob("*.json")))
    available = list_models()
    if spec is None:
        if not available:
            raise NoModelError(
                NO_MODEL_MESSAGE.format(
                    bundled=paths.bundled_models_dir(), user=paths.user_models_dir()
                )
            )
        return available[0]
    for card in available:
        if card.name == str(spec):
            return card
    names = ", ".join(c.name for c in available) or "none installed"
    raise NoModelError(f"no model named {str(spec)!r} (available: {names})")


def user_model(name: str) -> ModelCard:
    for card in user_models():
        if card.name == name:
            return card
    if any(card.name == name for card in bundled_models()):
        raise ModelError(f"{name!r} is a bundled model; bundled models cannot be changed")
    raise NoModelError(f"no model named {name!r} in the user library {paths.user_models_dir()}")


def delete_user_model(name: str) -> None:
    """Remove a model's card, weights and extras folder: all of them, or none.

    Every piece is first renamed into one hidden staging folder in the library (renames
    within a folder are atomic); if any rename fails the ones done are put back and the
    model is left whole. Only then is the staging folder removed. An extras "folder" that
    is a symlink is removed as a link: what it points to is never touched.
    """
    card = user_model(name)
    assert card.path is not None
    extra = card.path.with_suffix("")  # per-model folder (split, curves) if the trainer wrote one
    parts = [p for p in (card.path, card.weights_path, extra) if p.exists() or p.is_symlink()]
    staging = Path(tempfile.mkdtemp(prefix=f".deleting-{name}-", dir=card.path.parent))
    moved: list[Path] = []
    try:
        for part in parts:
            os.rename(part, staging / part.name)
            moved.append(part)
    except OSError as exc:
        for part in reversed(moved):
            os.rename(staging / part.name, part)
        staging.rmdir()
        raise ModelError(f"cannot delete model {name!r}: {exc}; nothing was removed") from exc
    shutil.rmtree(staging, ignore_errors=True)
    if staging.exists():  # the model is gone from the library; only hidden leftovers remain
        log.warning("could not remove all of %s", staging)


def rename_user_model(old: str, new: str) -> ModelCard:
    validate_name(new)
    if any(card.name == new for card in list_models()):
        raise ModelError(f"a model named {new!r} already exists")
    card = user_model(old)
    directory = paths.user_models_dir()
    old_weights, old_card, old_extra = card.weights_path, card.path, card.path.with_suffix("")
    new_weights = directory / f"{new}.safetensors"
    old_weights.rename(new_weights)
    if old_extra.is_dir():
        old_extra.rename(directory / new)
    card.name = new
    card.weights_file = new_weights.name
    card.write(directory / f"{new}.json")
    old_card.unlink()
    return card
