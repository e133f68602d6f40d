"""The verdict of a batch of prepared images: what the desktop batch engine and Spark's
workers both give, so a film gets the same answer from either (``trust.verdict``).

Why one function: the two callers passed the same ten arguments from ``Prepared`` by
hand, and one of them missed the images' shapes (the lung prior of a letterboxing model
then sat in the wrong place for non-square films)."""

from __future__ import annotations

from collections.abc import Sequence

from xraydesk.batch.batch_model import BatchOutputs
from xraydesk.batch.prepare import Prepared
from xraydesk.classifier import Classifier
from xraydesk.trust.ood import OODStatistics
from xraydesk.trust.verdict import Verdict, decide_all


def prepared_verdicts(
    classifier: Classifier,
    outputs: BatchOutputs,
    items: Sequence[Prepared],
    ood: OODStatistics | None,
) -> list[Verdict]:
    """One verdict per prepared image of one model batch (``outputs``, in their order):
    the gate's and the header's findings, the appearance heads, the corrections made in
    memory, the OOD score and the attention check on each image's own geometry."""
    return decide_all(
        classifier,
        outputs.probabilities,
        outputs.features,
        ood=ood,
        gate_warnings=[item.warnings for item in items],
        metadata=[item.metadata for item in items],
        appearance=[item.appearance for item in items],
        corrections=[item.corrections for item in items],
        activations=outputs.activations,  # the attention check (trust.attention)
        shapes=[item.shape for item in items],  # where a letterbox puts the lungs
    )
