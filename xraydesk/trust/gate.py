"""The input gate: is this a frontal chest radiograph, the right way up, worth classifying?

Every model in the library reads the same kind of image, so the gate judges the image,
not the model: it is one fixed network shipped with the package (``gate.safetensors``
beside this file), not a head per model. That keeps fine-tuned models and models trained
from scratch in the app covered without retraining anything, and it costs well under a
millisecond, far below the 10 % budget over a ResNet-50 forward pass. What is specific to
a model (is the image like the ones *it* learned from?) is the out-of-distribution score
in ``ood``, which reuses that model's own features.

Two layers:

* image statistics for the trivial cases: too small, blank or near-constant, pixel noise;
* a small CNN on a 64 x 64 standardised thumbnail with three heads: content (chest
  radiograph / part of one / something else), orientation (0, 90, 180, 270 degrees) and
  inverted grey scale. It was trained by ``training/train_gate.py`` on radiographs of the
  chest-3class training split, transformed (rotated, inverted, cropped to a corner), and
  on generated negatives (noise, blank, checkerboards, text pages, shapes) and the sample
  photographs scikit-image ships; nothing is downloaded at run time.

The training data hold no lateral views, so the gate cannot recognise one: it never
raises ``lateral`` (a lateral DICOM's ViewPosition is reported by ``view_warnings``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xraydesk.errors import ModelError
from xraydesk.imaging.resample import resize
from xraydesk.imaging.xray import XRay
from xraydesk.trust.body_part import other_part
from xraydesk.trust.codes import INVERTED, LATERAL, LOW_QUALITY, NOT_CHEST, ROTATED, ResultWarning
from xraydesk.trust.percentiles import low_high, mean, standard_deviation

GATE_FILE = Path(__file__).with_name("gate.safetensors")
THUMB = 64  # the gate's input side in pixels
MIN_SIDE = 128  # a radiograph with a shorter side than this is too small to read
CONTENT = ("chest", "partial", "other")  # the content head's classes
# Decision thresholds; training/train_gate.py reports the rates they give on held-out data.
P_OTHER = 0.5  # above: not a chest radiograph
P_PARTIAL = 0.5  # above: only part of one (cropped)
P_TURNED = 0.5  # orientation probability for "not upright" above this: rotated
P_INVERTED = 0.5
P_CONFIDENT = 0.9  # a correction is offered only above this


@dataclass(frozen=True)
class GateResult:
    """What the gate found in one image, and how to put it right where it can."""

    warnings: tuple[ResultWarning, ...]
    p_chest: float = 1.0
    p_partial: float = 0.0
    p_other: float = 0.0
    turns: int = 0  # quarter turns counter-clockwise the image has been rotated by
    p_turns: float = 1.0  # probability of that orientation
    p_inverted: float = 0.0

    @property
    def codes(self) -> list[str]:
        return [w.code for w in self.warnings]

    @property
    def passed(self) -> bool:
        return not self.warnings

    @property
    def correctable(self) -> bool:
        """Confidently rotated or inverted, and nothing else wrong: one click can fix it."""
        codes = set(self.codes)
        if not codes or not codes <= {ROTATED, INVERTED}:
            return False
        sure_turn = ROTATED not in codes or self.p_turns >= P_CONFIDENT
        sure_inverted = INVERTED not in codes or self.p_inverted >= P_CONFIDENT
        return sure_turn and sure_inverted


def unit_thumbnail(unit: np.ndarray, side: int = THUMB) -> np.ndarray:
    """A [0, 1] display image (H, W) to the gate's input (1, side, side): resized with
    anti-aliasing and standardised per image, so contrast style does not matter but the
    sign of the grey scale (inversion) does."""
    return standardise(resize(np.asarray(unit, dtype=np.float32), side, side)[None])


def standardise(thumb: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation (torch's unbiased one, as the gate was trained
    with), clipped to +-4."""
    thumb = np.asarray(thumb, dtype=np.float32)
    std = max(standard_deviation(thumb, ddof=1) if thumb.size > 1 else 0.0, 1e-3)
    out = np.subtract(thumb, mean(thumb))  # numpy's std and mean, bit for bit, and faster
    out /= np.float32(std)
    return np.clip(out, -4.0, 4.0, out=out)


def image_statistics(unit: np.ndarray) -> list[ResultWarning]:
    """The checks that need no network: size, blank or near-constant, pixel noise."""
    height, width = unit.shape
    found: list[ResultWarning] = []
    if min(height, width) < MIN_SIDE:
        found.append(
            ResultWarning(
                LOW_QUALITY,
                f"the image is only {width} x {height} pixels; a radiograph needs at least "
                f"{MIN_SIDE} on its shorter side to be read",
            )
        )
    step = max(1, max(height, width) // 512)
    sample = np.asarray(unit[::step, ::step], dtype=np.float32)
    low, high = low_high(sample, 1, 99)  # np.percentile's values, partitioning the tails only
    spread = float(high - low)
    if spread < 0.04 or standard_deviation(sample) < 0.02:  # np.std's value
        found.append(
            ResultWarning(NOT_CHEST, "the image is blank or nearly uniform: not a radiograph")
        )
        return found
    if _neighbour_correlation(sample) < 0.3:
        found.append(ResultWarning(NOT_CHEST, "the image is mostly pixel noise: not a radiograph"))
    return found


def _neighbour_correlation(sample: np.ndarray) -> float:
    """Correlation of horizontally adjacent pixels: near 1 for radiographs, near 0 for noise."""
    a = sample[:, :-1].astype(np.float32).ravel()  # copies: centred in place below
    b = sample[:, 1:].astype(np.float32).ravel()
    if a.size < 4:
        return 1.0
    a -= mean(a)
    b -= mean(b)
    aa, bb = float(a @ a), float(b @ b)  # BLAS dot products: np.corrcoef's float64
    if min(aa, bb) < 1e-12 * a.size:  # covariance matrix cost 1.7 ms an image, this 0.2
        return 1.0  # a standard deviation under 1e-6: flat
    return float(a @ b) / math.sqrt(aa * bb)


def view_warnings(xray: XRay) -> list[ResultWarning]:
    """What a DICOM's header says against reading it: a lateral view (ViewPosition LL, RL,
    LAT...) or a body part other than the chest (BodyPartExamined HAND, KNEE, ABDOMEN...).
    Both withhold the class as the gate's own findings do (``trust.verdict``)."""
    found: list[ResultWarning] = []
    view = (xray.metadata.view_position or "").strip().upper()
    if view in ("LL", "RL", "LATERAL", "LAT", "LLD", "RLD"):
        found.append(
            ResultWarning(
                LATERAL,
                f"the file says this is a lateral view ({view}); the models read frontal "
                "(PA or AP) radiographs only",
            )
        )
    part = other_part(xray.metadata.body_part)
    if part is not None:
        found.append(
            ResultWarning(
                NOT_CHEST,
                f"the file says the body part examined is {part}, not the chest; the models "
                "read chest radiographs only",
            )
        )
    return found


# The gate network as a function: standardised thumbnails (N, 1, 64, 64) -> logits (N, 9).
GateLogits = Callable[[np.ndarray], np.ndarray]


class InputGate:
    """The fixed gate network with its decision rules. Thread-safe.

    The shipped network runs in OpenVINO where it is installed and in numpy otherwise
    (``GateWeights.runner``), so the light build gates without torch; both are safe to
    call from several threads at once, and the decode threads of a batch run do, so no
    lock is held around them (``serialize`` False). Training (``training/train_gate.py``)
    evaluates its torch ``GateNet`` through the same rules by passing its own ``logits``,
    which are run one pass at a time (``serialize``, the default, as for any network a
    caller brings)."""

    def __init__(
        self, logits: GateLogits, info: dict | None = None, serialize: bool = True
    ) -> None:
        self.logits = logits
        self.info = info or {}
        self.lock: contextlib.AbstractContextManager = (
            threading.Lock() if serialize else contextlib.nullcontext()
        )

    @classmethod
    def load(cls, path: str | Path = GATE_FILE) -> InputGate:
        from xraydesk.trust.gate_forward import GateWeights

        path = Path(path)
        try:
            weights = GateWeights.load(path)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: the input gate could not be loaded ({exc})") from exc
        return cls(weights.runner(), weights.info, serialize=False)

    @classmethod
    def default(cls) -> InputGate:
        """The gate shipped with the package, loaded once per process."""
        return _default_gate()

    def probabilities(self, thumbs: np.ndarray) -> np.ndarray:
        """(N, 1, 64, 64) standardised thumbnails -> (N, 9): content 3, turns 4, inverted 2."""
        with self.lock:
            logits = self.logits(np.asarray(thumbs, dtype=np.float32))
        return gate_probabilities(logits)

    def check(self, xray: XRay) -> GateResult:
        """Gate one radiograph as it will be shown and classified."""
        return self.check_unit(xray, xray.render())

    def check_unit(self, xray: XRay, unit: np.ndarray) -> GateResult:
        """Gate one radiograph whose display image ``unit`` is already rendered."""
        return self.check_units([unit], [view_warnings(xray)])[0]

    def check_units(
        self, units: list[np.ndarray], extra: list[list[ResultWarning]] | None = None
    ) -> list[GateResult]:
        """Gate [0, 1] display images (each H x W); ``extra`` adds per-image warnings."""
        thumbs = np.stack([unit_thumbnail(u) for u in units]) if units else None
        stats = [image_statistics(np.asarray(u)) for u in units]
        return self.decide(thumbs, stats, extra)

    def decide(
        self,
        thumbs: np.ndarray | None,
        stats: list[list[ResultWarning]],
        extra: list[list[ResultWarning]] | None = None,
    ) -> list[GateResult]:
        """Combine the statistics' warnings with the network's verdict on the thumbnails."""
        if thumbs is None or not len(stats):
            return []
        return verdicts(self.probabilities(thumbs), stats, extra)


def gate_probabilities(logits: np.ndarray) -> np.ndarray:
    """The gate network's (N, 9) logits -> (N, 9) probabilities: a softmax over each head
    (content 3, turns 4, inverted 2), in float64."""
    from xraydesk.model.probabilities import softmax

    logits = np.asarray(logits, np.float64)
    return np.concatenate(
        [softmax(logits[:, 0:3]), softmax(logits[:, 3:7]), softmax(logits[:, 7:9])], axis=1
    )


def verdicts(
    probs: np.ndarray,
    stats: list[list[ResultWarning]],
    extra: list[list[ResultWarning]] | None = None,
) -> list[GateResult]:
    """The decision rules on the network's probabilities (``gate_probabilities``) and each
    image's statistics' and header's warnings."""
    extra = extra or [[] for _ in stats]
    return [_verdict(p, s, e) for p, s, e in zip(probs, stats, extra, strict=True)]


def _verdict(p: np.ndarray, stats: list[ResultWarning], extra: list[ResultWarning]) -> GateResult:
    p_chest, p_partial, p_other = (float(v) for v in p[0:3])
    turns_p = p[3:7]
    turns = int(np.argmax(turns_p))
    p_inverted = float(p[8])
    found = list(stats) + list(extra)
    codes = {w.code for w in found}
    if NOT_CHEST not in codes and p_other > P_OTHER:
        found.append(
            ResultWarning(
                NOT_CHEST,
                f"this does not look like a chest radiograph (gate: {p_other:.0%} other image)",
            )
        )
    elif NOT_CHEST not in codes:
        if p_partial > P_PARTIAL and LOW_QUALITY not in codes:
            found.append(
                ResultWarning(
                    LOW_QUALITY,
                    f"only part of a chest radiograph seems to be shown (heavily cropped, "
                    f"gate: {p_partial:.0%})",
                )
            )
        if 1.0 - float(turns_p[0]) > P_TURNED and turns != 0:
            found.append(
                ResultWarning(
                    ROTATED,
                    f"the radiograph seems rotated by {turns * 90} degrees "
                    f"(gate: {float(turns_p[turns]):.0%})",
                )
            )
        if p_inverted > P_INVERTED:
            found.append(
                ResultWarning(
                    INVERTED,
                    f"the grey scale seems inverted (a negative; gate: {p_inverted:.0%})",
                )
            )
    return GateResult(
        warnings=tuple(found),
        p_chest=p_chest,
        p_partial=p_partial,
        p_other=p_other,
        turns=turns,
        p_turns=float(turns_p[turns]),
        p_inverted=p_inverted,
    )


@functools.cache
def _default_gate() -> InputGate:
    return InputGate.load(GATE_FILE)
