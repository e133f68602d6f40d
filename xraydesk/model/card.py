"""Model cards: the JSON that travels with every set of weights.

A model is ``NAME.safetensors`` (weights, never pickle, so loading cannot run code) and
``NAME.json`` (this card) side by side. The card holds everything needed to use the
weights correctly (classes, preprocessing, temperature) and to judge them (data,
metrics, intended use, limits), plus two hashes the loader checks: the weights' sha256,
and an integrity hash over the card fields that change what a result says (architecture,
classes and their display names, preprocessing, temperature, weights). Without the second,
swapping two display names in a text editor would turn a COVID-19 result into "Normal".
The hash guards against edits and damage, not against someone who recomputes it; for the
bundled models the program itself records what their cards say (``model.anchor``). Cards
written before the hash existed still load, and every result from them says "unverified"
(``trust.card_trust``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xraydesk.errors import ModelError
from xraydesk.files import write_atomic
from xraydesk.model.anchor import check_anchor
from xraydesk.model.card_file import (  # MEANING_FIELDS: tests import it from here
    MEANING_FIELDS,  # noqa: F401
    meaning_fields,
    meaning_hash,
    read_card_json,
)
from xraydesk.model.class_groups import ClassGroup, groups_from_list
from xraydesk.model.operating_rule import OperatingRule
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.reference_outputs import ReferenceOutputs

CARD_FORMAT = "xraydesk-model/1"
# fit_temperature searches [0.05, 20] (these ends leave room for rounding); anything
# outside is not a temperature we made: 50 would flatten every answer towards 1/classes.
TEMPERATURE_RANGE = (0.04, 25.0)
# What the network builder (model.network) and the exports (runtime.resnet_walk) build:
# any other name would run a different network than the card says, or fail deep inside.
ARCHITECTURES = ("resnet50",)
DEFAULT_INTENDED_USE = (
    "Assists a qualified reader of chest radiographs by showing class probabilities and the "
    "regions that drove them. It does not diagnose and must not be the sole basis of a "
    "clinical decision."
)


@dataclass(frozen=True)
class ClassInfo:
    id: str
    name: str


@dataclass(frozen=True)
class AgeRange:
    """Ages in completed years, both ends included (``max_years`` 5 takes in 5 years and
    11 months); None leaves that end open ("18 and over")."""

    min_years: float | None = None
    max_years: float | None = None

    def contains(self, age_years: float) -> bool:
        if self.min_years is not None and age_years < self.min_years:
            return False
        return self.max_years is None or age_years < self.max_years + 1

    @property
    def text(self) -> str:
        low, high = self.min_years, self.max_years
        if low is not None and high is not None:
            return f"{low:g}-{high:g} years"
        if low is not None:
            return f"{low:g}+ years"
        return "any age" if high is None else f"up to {high:g} years"

    @classmethod
    def parse(cls, text: str) -> AgeRange:
        """``"1-5"``, ``"18-"`` (18 and over) or ``"-5"`` (up to 5), in years."""
        low, sep, high = text.strip().partition("-")
        if not sep:
            raise ValueError(f"age range {text!r}: expected MIN-MAX in years, e.g. 1-5 or 18-")
        try:
            age_range = cls(
                float(low) if low.strip() else None, float(high) if high.strip() else None
            )
        except ValueError:
            raise ValueError(f"age range {text!r}: MIN and MAX must be numbers of years") from None
        age_range.check(text)
        return age_range

    def check(self, where: str) -> None:
        ends = [v for v in (self.min_years, self.max_years) if v is not None]
        if any(not math.isfinite(v) or v < 0 for v in ends):
            raise ValueError(f"{where}: ages must be finite and not negative")
        if len(ends) == 2 and ends[0] > ends[1]:
            raise ValueError(f"{where}: the youngest age is above the oldest")


@dataclass(frozen=True)
class Population:
    """Who the model was trained on. Not result-bearing (outside the integrity hash): it
    does not change a probability, it tells whether the probability applies to a patient.
    No age ranges means the card does not say (cards made before this field existed)."""

    age_ranges: tuple[AgeRange, ...] = ()
    description: str = ""

    @property
    def stated(self) -> bool:
        return bool(self.age_ranges)

    def contains_age(self, age_years: float) -> bool | None:
        """Whether an age is within the population; None when the card does not say."""
        if not self.age_ranges:
            return None
        return any(r.contains(age_years) for r in self.age_ranges)

    @property
    def age_text(self) -> str:
        """ "1-5 years", "1-5 years or 18+ years", or "not stated"."""
        return " or ".join(r.text for r in self.age_ranges) or "not stated"

    def to_dict(self) -> dict[str, Any]:
        return {
            "age_ranges": [
                {"min_years": _years(r.min_years), "max_years": _years(r.max_years)}
                for r in self.age_ranges
            ],
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Population:
        if not data:
            return cls()
        ranges = []
        for item in data.get("age_ranges", []):
            low, high = item.get("min_years"), item.get("max_years")
            age_range = AgeRange(
                None if low is None else float(low), None if high is None else float(high)
            )
            age_range.check("population age range")
            ranges.append(age_range)
        return cls(age_ranges=tuple(ranges), description=str(data.get("description", "")))

    @classmethod
    def parse_ages(cls, text: str, description: str = "") -> Population:
        """From ``"1-5"`` or several ranges ``"1-5,18-"`` (as ``xraydesk train
        --population-age`` takes them)."""
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise ValueError("no age range given (expected MIN-MAX in years, e.g. 1-5)")
        return cls(tuple(AgeRange.parse(p) for p in parts), description)


@dataclass
class ModelCard:
    name: str
    version: str
    classes: list[ClassInfo]
    preprocessing: Preprocessing
    weights_file: str
    weights_sha256: str
    architecture: str = "resnet50"
    weights_dtype: str = "float32"
    temperature: float = 1.0
    description: str = ""
    intended_use: str = DEFAULT_INTENDED_USE
    limitations: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None
    created: str = field(default_factory=lambda: _dt.date.today().isoformat())
    licence: str = ""
    population: Population = field(default_factory=Population)
    # Below its confidence the model names no class (``model.operating_rule``); None: the
    # model answers every image (cards made before the rule existed).
    operating_rule: OperatingRule | None = None
    # classes that together mean one finding (``model.class_groups``): a withheld answer
    # still says what the model is sure of
    class_groups: tuple[ClassGroup, ...] = ()
    # The weights' fp32 outputs on seeded probes (``model.reference_outputs``): an
    # exported graph is checked against them without torch. None: cards made before them.
    reference_outputs: ReferenceOutputs | None = None
    # Where the card was read from; not saved.
    path: Path | None = field(default=None, compare=False)
    source: str = field(default="file", compare=False)  # "bundled", "user" or "file"
    # False for a card written before integrity hashes existed (it loads, unverified).
    verified: bool = field(default=True, compare=False)

    @property
    def class_ids(self) -> list[str]:
        return [c.id for c in self.classes]

    @property
    def display_names(self) -> dict[str, str]:
        return {c.id: c.name for c in self.classes}

    @property
    def label(self) -> str:
        """Name and version, as shown to users and stored with results."""
        return f"{self.name} {self.version}"

    @property
    def weights_path(self) -> Path:
        if self.path is None:
            raise ModelError(f"model card {self.name!r} has not been saved yet")
        return self.path.parent / self.weights_file

    def to_dict(self) -> dict[str, Any]:
        data = self._content()
        data["integrity"] = {"covers": meaning_fields(data), "sha256": meaning_hash(data)}
        return data

    def _content(self) -> dict[str, Any]:
        data = {
            "format": CARD_FORMAT,
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            "classes": [{"id": c.id, "name": c.name} for c in self.classes],
            "preprocessing": self.preprocessing.to_dict(),
            "temperature": self.temperature,
            "weights": {
                "file": self.weights_file,
                "sha256": self.weights_sha256,
                "dtype": self.weights_dtype,
            },
            "description": self.description,
            "intended_use": self.intended_use,
            "limitations": list(self.limitations),
            "training": self.training,
            "metrics": self.metrics,
            "base_model": self.base_model,
            "created": self.created,
            "licence": self.licence,
            "population": self.population.to_dict(),
        }
        # written only when present: a card made before them keeps its integrity hash
        if self.operating_rule is not None:
            data["operating_rule"] = self.operating_rule.to_dict()
        if self.reference_outputs is not None:
            data["reference_outputs"] = self.reference_outputs.to_dict()
        if self.class_groups:
            data["class_groups"] = [g.to_dict() for g in self.class_groups]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> ModelCard:
        """A checked card from its JSON; ``ModelError`` naming the file for anything else."""
        try:
            return cls._from_dict(data, path)
        except RecursionError:  # deeply nested values (repr, hashing)
            where = path or "model card"
            raise ModelError(f"{where}: malformed model card (nested too deeply)") from None

    @classmethod
    def _from_dict(cls, data: dict[str, Any], path: Path | None) -> ModelCard:
        where = str(path) if path else "model card"
        if not isinstance(data, dict):
            raise ModelError(f"{where}: not an XRayDesk model card (a JSON {type(data).__name__})")
        if data.get("format") != CARD_FORMAT:
            raise ModelError(f"{where}: not an XRayDesk model card (format {data.get('format')!r})")
        try:
            classes = [ClassInfo(id=str(c["id"]), name=str(c["name"])) for c in data["classes"]]
            weights = data["weights"]
            card = cls(
                name=str(data["name"]),
                version=str(data["version"]),
                architecture=str(data.get("architecture", "resnet50")),
                classes=classes,
                preprocessing=Preprocessing.from_dict(data["preprocessing"]),
                temperature=float(data.get("temperature", 1.0)),
                weights_file=str(weights["file"]),
                weights_sha256=str(weights["sha256"]),
                weights_dtype=str(weights.get("dtype", "float32")),
                description=str(data.get("description", "")),
                intended_use=str(data.get("intended_use", DEFAULT_INTENDED_USE)),
                limitations=list(data.get("limitations", [])),
                training=dict(data.get("training", {})),
                metrics=dict(data.get("metrics", {})),
                base_model=data.get("base_model"),
                created=str(data.get("created", "")),
                licence=str(data.get("licence", "")),
                population=Population.from_dict(data.get("population")),
                operating_rule=OperatingRule.from_dict(data.get("operating_rule"), where),
                reference_outputs=ReferenceOutputs.from_dict(data.get("reference_outputs"), where),
                class_groups=groups_from_list(
                    data.get("class_groups"), [c.id for c in classes], where
                ),
                path=path,
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ModelError(f"{where}: malformed model card ({exc})") from exc
        _check_values(card, where)
        card.verified = _check_integrity(data, where)
        check_anchor(data, path, card.weights_sha256)
        _check_architecture(card, where)  # after the hash: an edited name is named as an edit
        return card

    @classmethod
    def read(cls, path: str | Path, source: str = "file") -> ModelCard:
        path = Path(path)
        card = cls.from_dict(read_card_json(path), path=path)
        card.source = source
        return card

    def write(self, path: str | Path) -> None:
        """Write atomically, so a crash never leaves half a card."""
        path = Path(path)
        write_atomic(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        self.path = path


def _years(value: float | None) -> float | int | None:
    """5 rather than 5.0 in the JSON, so rewriting a card does not change it."""
    return int(value) if value is not None and float(value).is_integer() else value


def _check_integrity(data: dict[str, Any], where: str) -> bool:
    """True when the card's integrity hash matches; False for a card that has none."""
    integrity = data.get("integrity")
    if integrity is None:
        return False
    if not isinstance(integrity, dict) or not isinstance(integrity.get("sha256"), str):
        raise ModelError(f"{where}: malformed integrity record")
    if integrity["sha256"] != meaning_hash(data):
        raise ModelError(
            f"{where}: the card's classes, class groups, preprocessing, temperature, operating "
            "rule, reference outputs or weights entry were changed after the model was made "
            "(integrity hash mismatch); "
            "results from it could be mislabelled, so it is not loaded. Restore the original "
            "card."
        )
    return True


def _check_architecture(card: ModelCard, where: str) -> None:
    """A ``resnet18`` card ran the ResNet-50 graph (and failed deep inside torch)."""
    if card.architecture not in ARCHITECTURES:
        raise ModelError(
            f"{where}: architecture {card.architecture!r} is not one XRayDesk can run "
            f"(it builds {', '.join(ARCHITECTURES)}); the model is not loaded"
        )


def _check_values(card: ModelCard, where: str) -> None:
    """Refuse a card whose numbers or names would make a result wrong or unreadable."""
    if len(card.classes) < 2 or len(set(card.class_ids)) != len(card.classes):
        raise ModelError(f"{where}: a model needs at least two distinct classes")
    if any(not c.id.strip() or not c.name.strip() for c in card.classes):
        raise ModelError(f"{where}: every class needs an id and a display name")
    low, high = TEMPERATURE_RANGE
    if not (math.isfinite(card.temperature) and low <= card.temperature <= high):
        raise ModelError(
            f"{where}: temperature {card.temperature!r} is outside {low}..{high} "
            "(it would flatten or sharpen every probability)"
        )
    if not card.weights_file or Path(card.weights_file).name != card.weights_file:
        raise ModelError(f"{where}: the weights file must sit beside the card")
