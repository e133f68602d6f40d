"""One verdict per image: what a model's outputs mean, decided once for every front door.

The viewer, the CLI, the batch engine (and through it the DICOM node and the results
database) and Spark all turn the same things into a result: the class probabilities,
the input gate's warnings, the out-of-distribution score and the patient's age against
the model card's population; and probabilities that are not finite numbers become an
error, never a class. ``decide`` (one image) and ``decide_all`` (a batch) do it here,
so a warning added to the verdict reaches every output; front doors only format it.

A model's site profile (``model.site_profile``, adopted from ``xraydesk validate``) is
applied here too: its temperature before the probabilities (softmax(logits / T_site)),
then its rule: a top probability below its threshold withholds the class (prediction
None, ``indeterminate`` kept, warning ``indeterminate``); classes at or above their
per-class threshold are listed in ``site_positive``. A refused profile is not applied
and every result carries ``site_profile_refused``.

Without an adopted profile the model card's operating rule (``model.operating_rule``,
applied in ``trust.card_rule``) withholds the class the same way below its threshold;
an adopted site profile's rule replaces the card's.

An image the input gate flags (``GATE_WITHHOLDS``: not a chest film, rotated, inverted,
lateral, low quality) gets no class either: the viewer hides its numbers behind "Show
anyway", so every other front door withholds the class the same way (prediction None,
the answer kept in ``indeterminate``, the gate's warnings saying why). ``corrections``
are the notes of an image corrected in memory before it was classified (auto-orient):
reported, never withholding. ``Verdict.is_indeterminate`` is the one test every output
uses: classified, yet no class named.

An answer whose heat map lies mostly outside the lung fields (``trust.attention``: the
share of the predicted class's CAM mass there, from the activations of the same pass)
is withheld the same way, with ``evidence_outside_lungs`` saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xraydesk.classifier import Classifier, NonFiniteOutputError, Prediction
from xraydesk.imaging.xray import ImageMetadata
from xraydesk.trust.appearance import Appearance, appearance_warnings
from xraydesk.trust.attention import attention_warning, lung_shares
from xraydesk.trust.card_rule import card_indeterminate_warning, card_rule
from xraydesk.trust.card_trust import card_warnings
from xraydesk.trust.codes import (
    INVERTED,
    LATERAL,
    LOW_QUALITY,
    NOT_CHEST,
    ROTATED,
    ResultWarning,
)
from xraydesk.trust.group_answer import group_id, passing_group
from xraydesk.trust.ood import OODStatistics
from xraydesk.trust.population import population_warnings
from xraydesk.trust.site_rule import indeterminate_warning, profile_warnings

# The input gate's codes that withhold the class: the image itself is wrong (the
# out-of-distribution score only says it is unlike the training images).
GATE_WITHHOLDS = frozenset({NOT_CHEST, ROTATED, INVERTED, LATERAL, LOW_QUALITY})


def gate_withholds(gate_warnings: Sequence[ResultWarning]) -> bool:
    """Whether the gate's warnings on the image classified withhold its class."""
    return any(w.code in GATE_WITHHOLDS for w in gate_warnings)


@dataclass(frozen=True)
class Verdict:
    """The result of one image as every front door reports it.

    ``prediction`` is None when the result is withheld: ``error`` says why (the file's
    error row), or ``indeterminate`` holds the answer not given (``is_indeterminate``).
    ``warnings`` are the reasons not to trust it, in a fixed order: auto-orient's
    corrections, the input gate's, the out-of-distribution score's, then the population's;
    an error keeps them too, so the row still says what was wrong with the image."""

    prediction: Prediction | None
    warnings: tuple[ResultWarning, ...] = ()
    ood_score: float | None = None  # None: the model's card has no statistics
    error: str | None = None
    # the answer withheld as indeterminate (``prediction`` None, no error): the site
    # profile's rule (``model.site_profile``) or the input gate; and the classes at or
    # above their site threshold
    indeterminate: Prediction | None = None
    site_positive: tuple[str, ...] = ()
    # an indeterminate answer's finding: the id of the card's class group that the rule
    # which withheld the class accepts (``trust.group_answer``: bacterial + viral, so
    # "pneumonia"); None when no group passes, or the gate or the attention check withheld
    finding: str | None = None

    @property
    def is_indeterminate(self) -> bool:
        """Classified, yet no class is named (the operating rule, or the input gate):
        JSON's and the database's ``indeterminate``, the SR's "Indeterminate"."""
        return self.prediction is None and self.error is None and self.indeterminate is not None

    @property
    def withheld(self) -> bool:
        """No class is given (see ``error``, or ``indeterminate``)."""
        return self.prediction is None

    @property
    def probabilities(self) -> dict[str, float] | None:
        return None if self.prediction is None else self.prediction.probabilities

    @property
    def predicted(self) -> str | None:
        return None if self.prediction is None else self.prediction.predicted

    @property
    def codes(self) -> list[str]:
        """The warnings' stable codes (``trust.codes``), as CSV, JSON and Spark rows carry."""
        return [w.code for w in self.warnings]


def decide(
    classifier: Classifier,
    probabilities: np.ndarray,
    *,
    gate_warnings: Sequence[ResultWarning] = (),
    ood: OODStatistics | None = None,
    ood_score: float | None = None,
    metadata: ImageMetadata | None = None,
    stated_age: float | None = None,
    seconds: float = 0.0,
    corrections: Sequence[ResultWarning] = (),
    lung_share: float | None = None,
    appearance: Appearance | None = None,
) -> Verdict:
    """The verdict on one image from its row of probabilities (classes,), the gate's
    warnings, its OOD score (with the statistics that judge it) and its metadata (the
    patient's age; ``stated_age``, in years, from the user wins over the header).
    ``corrections``: what auto-orient corrected before classifying (never withholds).
    ``lung_share``: the share of the answer's heat map in the lung fields
    (``trust.attention``); too little withholds the class (None: not measured).
    ``appearance``: the image's mirror and age-group estimate (``trust.appearance``), for
    ``mirrored`` and, when no age is known, an estimated ``outside_population``."""
    warnings = [*corrections, *gate_warnings]
    score = None
    if ood is not None and ood_score is not None:
        score = float(ood_score)
        flag = ood.warning(score)
        if flag is not None:
            warnings.append(flag)
    warnings += population_warnings(classifier.card, metadata, stated_age)
    warnings += appearance_warnings(
        classifier.card, appearance, gate_warnings, metadata, stated_age
    )
    warnings += card_warnings(classifier.card)
    state = getattr(classifier, "site_profile", None)
    warnings += profile_warnings(state)
    probs = np.asarray(probabilities)
    try:
        prediction = classifier.prediction_from(probs, seconds)
    except NonFiniteOutputError as exc:  # NaN is no class: the image's error row
        return Verdict(None, tuple(warnings), score, str(exc))
    attention = attention_warning(lung_share)
    if attention is not None:  # the evidence lies mostly outside the lungs
        warnings.append(attention)
    profile = state.profile if state is not None else None
    if profile is None:
        rule = card_rule(classifier.card)  # the card's operating rule, when it has one
        if rule is not None and rule.indeterminate(probs):
            found = passing_group(classifier.card, probs, rule.indeterminate)
            warnings.append(card_indeterminate_warning(classifier.card, rule, probs, found))
            return Verdict(None, tuple(warnings), score, None, prediction, finding=group_id(found))
        if gate_withholds(gate_warnings) or attention is not None:
            return Verdict(None, tuple(warnings), score, None, prediction)
        return Verdict(prediction, tuple(warnings), score)
    # the site's temperature before the probabilities, then its operating rule
    probs = profile.tempered(probs, classifier.card.temperature)
    prediction = classifier.prediction_from(probs, seconds)
    positive = profile.positives(classifier.class_ids, probs)
    if profile.indeterminate(probs):
        found = passing_group(classifier.card, probs, profile.indeterminate)
        warnings.append(indeterminate_warning(classifier.card, profile, probs, found))
        return Verdict(None, tuple(warnings), score, None, prediction, positive, group_id(found))
    if gate_withholds(gate_warnings) or attention is not None:
        return Verdict(None, tuple(warnings), score, None, prediction, positive)
    return Verdict(prediction, tuple(warnings), score, site_positive=positive)


def decide_all(
    classifier: Classifier,
    probabilities: np.ndarray,
    features: np.ndarray | None,
    *,
    ood: OODStatistics | None,
    gate_warnings: Sequence[Sequence[ResultWarning] | None] | None = None,
    metadata: Sequence[ImageMetadata | None] | None = None,
    corrections: Sequence[Sequence[ResultWarning] | None] | None = None,
    activations: np.ndarray | None = None,
    appearance: Sequence[Appearance | None] | None = None,
    shapes: Sequence[tuple[int, int] | None] | None = None,
) -> list[Verdict]:
    """``decide`` for a batch: probabilities (N, classes), pooled features (N, D) and the
    last stage's activations (N, D', h, w; None: no attention check) of one forward pass;
    the OOD scores and the lung shares are computed for the whole batch at once.
    ``shapes``: each image's (height, width) as preprocessed, which places the lung
    fields when the model letterboxes (None: as if the film filled the input square,
    which is right only for stretching models), as the single-image check does."""
    n = len(probabilities)
    shares: Sequence[float | None] = [None] * n
    if activations is not None and n:
        found = lung_shares(classifier, activations, probabilities, shapes)
        shares = [float(v) for v in found]
    scores: Sequence[float | None] = [None] * n
    if ood is not None and features is not None and n:
        scores = [float(s) for s in ood.score(features)]
    gates = gate_warnings if gate_warnings is not None else [()] * n
    metas = metadata if metadata is not None else [None] * n
    fixes = corrections if corrections is not None else [()] * n
    looks = appearance if appearance is not None else [None] * n
    return [
        decide(
            classifier,
            p,
            gate_warnings=tuple(g or ()),
            ood=ood,
            ood_score=s,
            metadata=m,
            corrections=tuple(c or ()),
            lung_share=a,
            appearance=look,
        )
        for p, s, g, m, c, a, look in zip(
            probabilities, scores, gates, metas, fixes, shares, looks, strict=True
        )
    ]
