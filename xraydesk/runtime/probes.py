"""A check of every new export: the graph must compute what the network computes.

A few seeded smooth images (``model.reference_outputs.probe_inputs``: no patient image
ships with the app) go through the new graph at fp32 in the runtime about to use it, and
its outputs are compared with the network's fp32 outputs on the same probes: those saved
in the model card at training time (``check_graph_against_card``: no torch, so the first
run of a model costs no torch import and the light build checks its exports too), or,
for a card made before they were saved, those of the torch network (``check_graph``).

A broken export (an exporter or runtime bug, a graph cut at the wrong layer) differs by
far more than the 1e-6 or so that a different summation order makes; the check refuses
it, deletes the graph and leaves the model on torch. It says nothing about bf16 or int8
rounding on real radiographs: that is what the shipped verdicts (``faithful``) are for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.reference_outputs import (
    TOLERANCE,
    ReferenceOutputs,
    probe_inputs,
    reference_outputs,
)
from xraydesk.runtime.backend import Backend, RuntimeUnavailable

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "TOLERANCE",
    "check_graph",
    "check_graph_against_card",
    "probe_inputs",
    "reference_outputs",
]


def check_graph_against_card(
    backend: Backend, reference: ReferenceOutputs, preprocessing: Preprocessing
) -> float:
    """The largest relative difference between ``backend`` and the card's saved outputs on
    the probes; raises ``RuntimeUnavailable`` above ``TOLERANCE``."""
    out = backend.run(reference.inputs(preprocessing), activations=True)
    differences = reference.largest_difference(out.logits, out.features, out.activations)
    for name, diff in differences.items():
        if not diff <= TOLERANCE:
            raise RuntimeUnavailable(
                f"the exported graph's {name} differ from the model card's reference "
                f"outputs by {diff:.2e} of their range on the probes (allowed "
                f"{TOLERANCE:.0e}): export refused"
            )
    return max(differences.values())


def check_graph(backend: Backend, network: nn.Module, preprocessing: Preprocessing) -> float:
    """``check_graph_against_card`` with the reference computed by the torch network now
    (a card without saved reference outputs)."""
    reference = reference_outputs(network, preprocessing)
    if reference is None:
        raise RuntimeUnavailable(
            "the network's own outputs on the probes are not finite numbers: export refused"
        )
    return check_graph_against_card(backend, reference, preprocessing)
