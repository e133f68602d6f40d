"""The input gate and the appearance heads on one thumbnail, as one network call.

Both networks read the same 64 x 64 thumbnail of every image (``gate.unit_thumbnail``),
and the batch engine's decode stage and ``TrustCheck`` run both on each image. When both
are the shipped kind (``runtime.gate_graph.GateRunner``: OpenVINO fp32, numpy before it
compiles or without it), they are joined into one runner whose compiled model holds both
networks side by side: one inference request an image instead of two, with each
network's logits computed by the same operations as alone (tests/trust/test_thumb_nets.py
checks them equal on real films). Any other network (training's torch ``GateNet``, a
test's stand-in) runs on its own, as ``InputGate.decide`` and ``AppearanceHeads.estimate``
run it.
"""

from __future__ import annotations

import functools

import numpy as np

from xraydesk.runtime.gate_graph import GateRunner
from xraydesk.trust.appearance import Appearance, AppearanceHeads, appearances
from xraydesk.trust.codes import ResultWarning
from xraydesk.trust.gate import GateResult, InputGate, gate_probabilities, verdicts


class ThumbNets:
    """The gate's verdicts and the appearance estimates of the same thumbnails."""

    def __init__(self, gate: InputGate, heads: AppearanceHeads) -> None:
        self.gate = gate
        self.heads = heads
        both = isinstance(gate.logits, GateRunner) and isinstance(heads.logits, GateRunner)
        self.joint = _joint(gate.logits, heads.logits) if both else None

    def judge(
        self,
        thumbs: np.ndarray,
        stats: list[list[ResultWarning]],
        extra: list[list[ResultWarning]] | None = None,
    ) -> tuple[list[GateResult], list[Appearance]]:
        """(N, 1, 64, 64) thumbnails with each image's statistics' and header's warnings
        (as ``InputGate.decide`` takes them) -> the gate's results and the estimates."""
        if self.joint is None:
            return self.gate.decide(thumbs, stats, extra), self.heads.estimate(thumbs)
        logits = self.joint(np.asarray(thumbs, dtype=np.float32))
        width = self.joint.networks[0].out_bias.shape[0]  # the gate's, first
        return verdicts(gate_probabilities(logits[:, :width]), stats, extra), appearances(
            logits[:, width:]
        )


@functools.cache
def _joint(gate: GateRunner, heads: GateRunner) -> GateRunner:
    """One joined runner per pair (the shipped pair is loaded once per process), so that
    it is compiled once, not once per batch run."""
    return GateRunner.joint((gate, heads))
