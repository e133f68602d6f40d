"""One image checked and classified, for the viewer, the DICOM results and the CLI.

``TrustCheck`` runs the gate, the classifier, the out-of-distribution score and the
attention check (``trust.attention``: is the answer's heat map in the lungs?) from a
single forward pass and hands the outputs to the one verdict (``trust.verdict.decide``),
which every front door shares; with ``auto_orient`` (the CLI's ``--auto-orient``, the
viewer's one-click correction) a confidently rotated or inverted image is corrected in
memory (``trust.orient``) and classified again.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from dataclasses import dataclass, field

from xraydesk.classifier import Classifier, ForwardOutputs, NonFiniteOutputError, Prediction
from xraydesk.imaging.xray import XRay
from xraydesk.trust.appearance import AppearanceHeads
from xraydesk.trust.attention import lung_shares
from xraydesk.trust.codes import ResultWarning
from xraydesk.trust.gate import GateResult, InputGate, image_statistics, unit_thumbnail
from xraydesk.trust.gate import view_warnings as gate_view_warnings
from xraydesk.trust.ood import OODStatistics
from xraydesk.trust.orient import corrected, correction_text
from xraydesk.trust.thumb_nets import ThumbNets
from xraydesk.trust.verdict import Verdict, decide, gate_withholds


@dataclass(frozen=True)
class CheckedResult:
    """A prediction with the reasons not to trust it. ``xray`` is the image classified
    (the corrected copy when ``correction`` is set)."""

    prediction: Prediction
    warnings: tuple[ResultWarning, ...]
    gate: GateResult
    ood_score: float | None  # None: the model's card has no statistics
    xray: XRay
    correction: str | None = None  # what auto-orient did, in words
    first: CheckedResult | None = None  # the result before the correction
    # the forward pass behind ``prediction``, with the last stage's activations when
    # ``classify(..., activations=True)``: the viewer's heat map (CAM) comes from it
    forward: ForwardOutputs | None = field(default=None, compare=False, repr=False)
    verdict: Verdict | None = field(default=None, compare=False, repr=False)

    @property
    def codes(self) -> list[str]:
        return [w.code for w in self.warnings]

    @property
    def gate_failed(self) -> bool:
        """The image itself is wrong (not just unlike the training data): hide the numbers
        until the user asks to see them (the one verdict withholds its class too)."""
        return gate_withholds(self.gate.warnings)


class TrustCheck:
    """Gate + classifier + OOD statistics for one model."""

    def __init__(
        self,
        classifier: Classifier,
        gate: InputGate | None = None,
        ood: OODStatistics | bool | None = True,
        appearance: AppearanceHeads | None = None,
    ) -> None:
        self.classifier = classifier
        self.gate = gate or InputGate.default()
        self.appearance = appearance or AppearanceHeads.default()
        self.nets = ThumbNets(self.gate, self.appearance)  # both from one network call
        self.ood = OODStatistics.from_card(classifier.card) if ood is True else ood or None

    @classmethod
    def of(cls, classifier: Classifier) -> TrustCheck:
        """A checker for a loaded classifier; its card's statistics are decoded once."""
        with _STATS_LOCK:
            if classifier not in _STATS:
                _STATS[classifier] = OODStatistics.from_card(classifier.card)
            stats = _STATS[classifier]
        return cls(classifier, ood=stats)

    def classify(
        self, xray: XRay, auto_orient: bool = False, activations: bool = False
    ) -> CheckedResult:
        """Check and classify one radiograph; corrected and classified again when asked
        and the gate is confident it is rotated or inverted. ``activations`` keeps the
        last stage's output in ``forward`` (about 0.4 MB) for the heat map.

        Raises NonFiniteOutputError when the verdict withholds the result (the model's
        output is not a number): the viewer shows that sentence instead of bars."""
        first = self._once(xray, activations)
        if auto_orient and first.gate.correctable:
            return self.correct(first, activations)
        return first

    def correct(self, result: CheckedResult, activations: bool = False) -> CheckedResult:
        """The one-click correction: classify the corrected image again."""
        fixed = corrected(result.xray, result.gate)
        again = self._once(fixed, activations)
        return dataclasses.replace(again, correction=correction_text(result.gate), first=result)

    def _once(self, xray: XRay, activations: bool) -> CheckedResult:
        start = time.perf_counter()
        unit = xray.render()
        tensor = self.classifier.preprocessing.from_unit(unit)
        # the activations always: the attention check weighs them (trust.attention)
        forward = self.classifier.forward(tensor[None], activations=True)
        probs = self.classifier.probabilities(forward.logits)[0]
        seconds = time.perf_counter() - start
        share = None
        if forward.activations is not None:
            maps = forward.activations
            share = float(lung_shares(self.classifier, maps, probs[None], [xray.shape])[0])
        if not activations:  # not kept for a heat map: about 0.4 MB less per result
            forward = dataclasses.replace(forward, activations=None)
        thumb = unit_thumbnail(unit)[None]  # the gate's and the appearance heads' input
        gates, looks = self.nets.judge(thumb, [image_statistics(unit)], [gate_view_warnings(xray)])
        gate, look = gates[0], looks[0]
        score = None
        if self.ood is not None:
            score = float(self.ood.score(forward.features)[0])
        verdict = decide(
            self.classifier,
            probs,
            gate_warnings=gate.warnings,
            ood=self.ood,
            ood_score=score,
            metadata=xray.metadata,
            seconds=seconds,
            lung_share=share,
            appearance=look,
        )
        # an indeterminate answer (site profile) keeps its bars: the warning says why
        # no class is given, as a gate warning does
        shown = verdict.prediction or verdict.indeterminate
        if shown is None:
            raise NonFiniteOutputError(verdict.error or "no result")
        return CheckedResult(
            shown,
            verdict.warnings,
            gate,
            verdict.ood_score,
            xray,
            forward=forward,
            verdict=verdict,
        )


# Per loaded classifier (weak: a classifier dropped from the cache takes its entry along).
_STATS: weakref.WeakKeyDictionary[Classifier, OODStatistics | None] = weakref.WeakKeyDictionary()
_STATS_LOCK = threading.Lock()
