"""A site's own calibration of a model: the profile adopted from a validation run.

A model card's temperature was fitted on the card's data; a site's scanners and patients
may need another. ``xraydesk validate MODEL FOLDER --adopt-profile`` (or the GUI's
validation page) fits, on one part of the site's labelled images, a temperature and an
operating rule, and stores it in the data folder (``site-profiles/MODEL.json``; the
bundled model folder is read-only and every ``*.json`` there is read as a card):

- ``temperature``: the site's temperature; it replaces the card's, so the probabilities
  are ``softmax(logits / T_site)``;
- ``indeterminate_below``: a top-class probability below which the verdict withholds
  the answer as indeterminate (prediction None, warning ``indeterminate``);
- ``class_thresholds``: per class, the probability at or above which the class is called
  positive at the site (``Verdict.site_positive``), set so that about ``sensitivity`` of
  that class's images at the site reach it. The predicted class stays the top one.

The card's integrity rules apply: ``integrity.sha256`` is a sha256 over the profile's
canonical JSON, which names the model's weights digest. A profile that was edited (its
hash no longer matches) or belongs to other weights is refused with a clear message and
the model runs with its card's calibration, every result saying so. Qt-free, torch-free.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk.errors import ModelError
from xraydesk.model.anchor import card_digest
from xraydesk.model.card import ModelCard

FORMAT = "xraydesk-site-profile/1"
FOLDER = "site-profiles"
_T_RANGE = (0.05, 20.0)  # as the card's temperature (fit_temperature's search range)


class SiteProfileError(ModelError):
    """A profile that cannot be used: unreadable, edited or made for another model."""


@dataclass(frozen=True)
class SiteProfile:
    """The site's temperature and operating rule for one model's weights."""

    model: str
    weights_sha256: str
    temperature: float
    indeterminate_below: float
    class_thresholds: dict[str, float]
    sensitivity: float | None = None
    fitted_on: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    @property
    def n(self) -> int:
        """How many images the profile was fitted on."""
        return int(self.fitted_on.get("n", 0))

    @property
    def line(self) -> str:
        """What the results panel and ``xraydesk models`` say about it."""
        return (
            f"calibrated for this site on n = {self.n} images (temperature "
            f"{self.temperature:.3g}, indeterminate below {self.indeterminate_below:.0%})"
        )

    def tempered(self, probabilities: np.ndarray, card_temperature: float) -> np.ndarray:
        """Probabilities at the site's temperature from those at the card's: log p is the
        logits / T_card up to a constant per row, so this is softmax(logits / T_site)."""
        p = np.asarray(probabilities, dtype=np.float64)
        with np.errstate(divide="ignore"):
            z = np.log(p) * (float(card_temperature) / self.temperature)
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def indeterminate(self, probabilities: np.ndarray) -> bool:
        """True when the top probability (at the site's temperature) is below the rule's."""
        return float(np.max(probabilities)) < self.indeterminate_below

    def positives(self, class_ids: list[str], probabilities: np.ndarray) -> tuple[str, ...]:
        """The classes at or above their site threshold."""
        return tuple(
            cid
            for cid, p in zip(class_ids, probabilities, strict=True)
            if cid in self.class_thresholds and float(p) >= self.class_thresholds[cid]
        )

    def content(self) -> dict[str, Any]:
        """The profile's JSON without its integrity record."""
        return {
            "format": FORMAT,
            "model": self.model,
            "weights_sha256": self.weights_sha256,
            "temperature": self.temperature,
            "indeterminate_below": self.indeterminate_below,
            "sensitivity": self.sensitivity,
            "class_thresholds": dict(self.class_thresholds),
            "fitted_on": dict(self.fitted_on),
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.content()
        data["integrity"] = {"sha256": card_digest(data)}
        return data


@dataclass(frozen=True)
class ProfileState:
    """What a loaded model knows of its site profile: the profile, or why it was refused."""

    profile: SiteProfile | None = None
    refused: str | None = None  # the message when a profile exists but is not used


NO_PROFILE = ProfileState()


def site_profile_key(card: ModelCard) -> str:
    """What the results database adds to a model's key (``batch.database.model_key``): rows
    made under one profile, another or none are not reused for each other."""
    state = load_state(card)
    if state.refused is not None:
        return "~site-profile-refused"
    if state.profile is None:
        return ""
    return f"~site-{card_digest(state.profile.content())[:16]}"


def profile_path(card: ModelCard) -> Path:
    """Where the site profile of ``card``'s model is kept."""
    from xraydesk.paths import data_dir

    return data_dir() / FOLDER / f"{card.name}.json"


def load_state(card: ModelCard) -> ProfileState:
    """The profile of ``card``'s model if there is one that passes its checks; a refused
    one is reported in ``refused``, never raised: the model runs without it."""
    from xraydesk.paths import DataFolderError

    try:
        path = profile_path(card)
    except DataFolderError:
        return NO_PROFILE
    if not path.exists():
        return NO_PROFILE
    try:
        return ProfileState(read_profile(path, card))
    except SiteProfileError as exc:
        return ProfileState(None, str(exc))


def read_profile(path: Path, card: ModelCard) -> SiteProfile:
    """The profile at ``path`` for ``card``, or SiteProfileError naming the file and why."""
    from xraydesk.model.card_file import read_card_json

    try:
        data = read_card_json(path, max_bytes=1024**2)
    except ModelError as exc:
        raise SiteProfileError(f"site profile {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SiteProfileError(f"{path}: not an XRayDesk site profile ({FORMAT})")
    integrity = data.pop("integrity", None)
    stated = integrity.get("sha256") if isinstance(integrity, dict) else None
    if stated != card_digest(data):
        raise SiteProfileError(
            f"{path}: the site profile was changed after it was adopted (its integrity "
            "hash does not match its content); it is not used. Validate again and adopt a "
            f"new profile, or remove it: xraydesk models profile {card.name} --remove"
        )
    if data.get("weights_sha256") != card.weights_sha256:
        raise SiteProfileError(
            f"{path}: the site profile was adopted for other weights "
            f"(model {data.get('model')!r}), not those of {card.label}; it is not used. "
            f"Remove it: xraydesk models profile {card.name} --remove"
        )
    try:
        profile = SiteProfile(
            model=str(data["model"]),
            weights_sha256=str(data["weights_sha256"]),
            temperature=float(data["temperature"]),
            indeterminate_below=float(data["indeterminate_below"]),
            class_thresholds={str(k): float(v) for k, v in data["class_thresholds"].items()},
            sensitivity=None if data.get("sensitivity") is None else float(data["sensitivity"]),
            fitted_on=dict(data.get("fitted_on") or {}),
            path=path,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SiteProfileError(f"{path}: incomplete site profile ({exc})") from None
    check_values(profile, card, str(path))
    return profile


def check_values(profile: SiteProfile, card: ModelCard, where: str) -> None:
    """Refuse values no fit makes (a temperature outside the card's range, a probability
    outside [0, 1], a class the model does not have)."""
    low, high = _T_RANGE
    if not (math.isfinite(profile.temperature) and low <= profile.temperature <= high):
        raise SiteProfileError(
            f"{where}: temperature {profile.temperature!r} outside {low}..{high}"
        )
    values = [profile.indeterminate_below, *profile.class_thresholds.values()]
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise SiteProfileError(f"{where}: a threshold outside 0..1")
    unknown = set(profile.class_thresholds) - set(card.class_ids)
    if unknown:
        raise SiteProfileError(f"{where}: thresholds for classes the model lacks: {unknown}")


def save_profile(profile: SiteProfile, card: ModelCard) -> Path:
    """Store the profile (signed) for ``card``'s model, whole or not at all."""
    from xraydesk.files import write_atomic

    check_values(profile, card, "site profile")
    path = profile_path(card)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(profile.to_dict(), indent=1, allow_nan=False) + "\n")
    except OSError as exc:
        raise SiteProfileError(f"{path}: cannot store the site profile ({exc})") from exc
    return path


def remove_profile(card: ModelCard) -> Path | None:
    """Remove the model's profile; the path removed, or None when there was none."""
    path = profile_path(card)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SiteProfileError(f"{path}: cannot remove the site profile ({exc})") from exc
    return path
