"""What the film itself says when the file does not: a young child's or an adult's, mirrored.

A PNG or JPEG carries no patient age, so ``population`` has nothing to judge a pediatric
model on an adult's film by; and a film mirrored left to right (the heart on the image's
left) still gets a confident answer. Both can be seen in the image: a young child's chest
differs from an adult's in shape and proportions, and on a standard PA or AP film the heart
and the aortic knob lie on the image's right. ``appearance.safetensors`` (beside this
file) is a network of the input gate's shape (``gate_net.GateNet`` with four outputs, run
in numpy by ``gate_forward``) on the gate's own 64 x 64 thumbnail: two logits for
upright / mirrored, two for young child / adult. ``training/train_appearance.py`` trains
it on left-right flips of the pools' training patients and records its held-out figures
in the file's ``info`` and in ``appearance.json`` beside it.

The age group is an estimate, and it is only used when neither the user nor the file
gives an age; its warning says so. Hostile or missing weights raise ``ModelError`` naming
the file, as the gate's do: a check that silently disappears would let a pediatric model
answer for an adult without a word.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xraydesk.errors import ModelError
from xraydesk.imaging.xray import ImageMetadata
from xraydesk.model.card import ModelCard
from xraydesk.trust.codes import (
    INVERTED,
    LATERAL,
    MIRRORED,
    NOT_CHEST,
    OUTSIDE_POPULATION,
    ROTATED,
    ResultWarning,
)

APPEARANCE_FILE = Path(__file__).with_name("appearance.safetensors")
N_OUTPUTS = 4  # upright, mirrored, young child, adult
# Decision thresholds; training/train_appearance.py reports the rates they give on
# held-out patients and on pools the network never saw.
P_MIRRORED = 0.5
P_GROUP = 0.5  # an age group is named above this probability, the other below 1 - it
# Ages that stand for each group when comparing with a card's population: the pools hold
# children of 1 to 5 and adults.
GROUP_AGES = {"adult": (18.0, 40.0, 70.0), "young child": (1.0, 3.0, 5.0)}
# The image is not an upright frontal chest film: neither estimate means anything.
NOT_JUDGED = frozenset({NOT_CHEST, ROTATED, INVERTED, LATERAL})


@dataclass(frozen=True)
class Appearance:
    """The appearance heads' estimate for one image."""

    p_mirrored: float
    p_adult: float

    @property
    def mirrored(self) -> bool:
        return self.p_mirrored > P_MIRRORED

    @property
    def group(self) -> str:
        """Whichever is more likely: "adult" or "young child"."""
        return "adult" if self.p_adult > P_GROUP else "young child"

    @property
    def p_group(self) -> float:
        """The probability of ``group``."""
        return self.p_adult if self.group == "adult" else 1.0 - self.p_adult


class AppearanceHeads:
    """The mirror and age-group network with its rules. Thread-safe: the shipped network
    runs in OpenVINO or numpy (``GateWeights.runner``), both callable from several threads
    at once."""

    def __init__(self, logits, info: dict | None = None) -> None:
        self.logits = logits  # (N, 1, 64, 64) standardised thumbnails -> (N, 4)
        self.info = info or {}

    @classmethod
    def load(cls, path: str | Path = APPEARANCE_FILE) -> AppearanceHeads:
        """The heads from a safetensors file; ``ModelError`` names the file and the cause."""
        from xraydesk.trust.gate_forward import GateWeights

        path = Path(path)
        try:
            weights = GateWeights.load(path, n_logits=N_OUTPUTS)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(
                f"{path}: the mirror and age-group check could not be loaded ({exc}); "
                "reinstall XRayDesk"
            ) from exc
        return cls(weights.runner(), weights.info)

    @classmethod
    def default(cls) -> AppearanceHeads:
        """The heads shipped with the package, loaded once per process."""
        return _default_heads()

    def estimate(self, thumbs: np.ndarray) -> list[Appearance]:
        """(N, 1, 64, 64) gate thumbnails (``gate.unit_thumbnail``) -> one estimate each."""
        return appearances(self.logits(np.asarray(thumbs, dtype=np.float32)))


def appearances(logits: np.ndarray) -> list[Appearance]:
    """The heads' (N, 4) logits -> one estimate each (a softmax over each pair)."""
    from xraydesk.model.probabilities import softmax

    logits = np.asarray(logits, np.float64)
    mirror, group = softmax(logits[:, 0:2]), softmax(logits[:, 2:4])
    return [Appearance(float(m), float(a)) for m, a in zip(mirror[:, 1], group[:, 1], strict=True)]


def appearance_warnings(
    card: ModelCard,
    appearance: Appearance | None,
    gate_warnings: Sequence[ResultWarning] = (),
    metadata: ImageMetadata | None = None,
    stated_age: float | None = None,
) -> list[ResultWarning]:
    """``mirrored`` when the film looks mirrored; ``outside_population`` when no age is
    known (stated or in the file) and the estimated age group lies outside the card's
    population. Nothing when the gate already found the image is not an upright frontal
    chest film."""
    if appearance is None or NOT_JUDGED & {w.code for w in gate_warnings}:
        return []
    found = []
    no_age = stated_age is None and (metadata is None or metadata.age_years is None)
    ages = GROUP_AGES[appearance.group]
    if no_age and all(card.population.contains_age(a) is False for a in ages):
        article = "an" if appearance.group == "adult" else "a"
        found.append(
            ResultWarning(
                OUTSIDE_POPULATION,
                f"this looks like {article} {appearance.group}'s film (estimated from the "
                f"image, p={appearance.p_group:.2f}; the file gives no age), and {card.label} "
                f"was trained on patients aged {card.population.age_text}; its probabilities may "
                "not apply",
            )
        )
    if appearance.mirrored:
        found.append(
            ResultWarning(
                MIRRORED,
                "the film seems mirrored left to right: the heart lies on the image's left "
                f"(estimated from the image, p={appearance.p_mirrored:.2f}); the models were "
                "trained on standard films",
            )
        )
    return found


@functools.cache
def _default_heads() -> AppearanceHeads:
    return AppearanceHeads.load(APPEARANCE_FILE)
