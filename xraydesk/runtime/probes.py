"""A check of every new export: the graph must compute what the network computes.

A few seeded smooth images (``model.reference_outputs.probe_inputs``: no patient image
ships with the app) go through the new graph at fp32 in the runtime about to use it, and
its outputs are compared with the network's fp32 outputs on the same probes: those saved
in the model card at training time (``check_graph_against_card``: no torch, so the first
run of a model costs no torch import and the light build checks its exports too), or,
for a card made before they were saved, those of the torch network (``check_graph``).

A broken export (an exporter or runtime bug, a graph cut at the wrong layer) differs by
far more than the 1e-6 or so that a different summation order makes; the check refuses
it, deletes the graph and leaves the model on torch. The int8 graph, which rounds by
design, is checked too, within what its ranges gave where they were measured plus a
margin (``int8_tolerance``): that refuses a graph built wrong (ranges, layers, scales),
not one that rounds. Neither check says anything about bf16 or
int8 rounding on real radiographs: that is what the shipped verdicts (``faithful``) are for.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.reference_outputs import (
    REDUCED_MARGIN,
    REDUCED_TOLERANCE,
    TOLERANCE,
    ReferenceOutputs,
    probe_inputs,
    reference_outputs,
)
from xraydesk.runtime.backend import Backend, RuntimeUnavailable

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "REDUCED_TOLERANCE",
    "TOLERANCE",
    "check_graph",
    "check_graph_against_card",
    "int8_tolerance",
    "probe_inputs",
    "reference_outputs",
]


def check_graph_against_card(
    backend: Backend,
    reference: ReferenceOutputs,
    preprocessing: Preprocessing,
    tolerance: float = TOLERANCE,
) -> float:
    """The largest relative difference between ``backend`` and the card's saved outputs on
    the probes; raises ``RuntimeUnavailable`` above ``tolerance`` (``int8_tolerance``
    for the int8 graph, which rounds by design)."""
    out = backend.run(reference.inputs(preprocessing), activations=True)
    differences = reference.largest_difference(out.logits, out.features, out.activations)
    for name, diff in differences.items():
        if not diff <= tolerance:
            raise RuntimeUnavailable(
                f"the exported graph's {name} differ from the model card's reference "
                f"outputs by {diff:.2e} of their range on the probes (allowed "
                f"{tolerance:.0e}): export refused"
            )
    return max(differences.values())


def check_graph(
    backend: Backend,
    network: nn.Module,
    preprocessing: Preprocessing,
    tolerance: float = TOLERANCE,
) -> float:
    """``check_graph_against_card`` with the reference computed by the torch network now
    (a card without saved reference outputs)."""
    reference = reference_outputs(network, preprocessing)
    if reference is None:
        raise RuntimeUnavailable(
            "the network's own outputs on the probes are not finite numbers: export refused"
        )
    return check_graph_against_card(backend, reference, preprocessing, tolerance)


def int8_tolerance(recorded: float | None) -> float:
    """The check's tolerance for an int8 graph whose ranges gave ``recorded`` on the probes
    where they were measured (None: not recorded)."""
    if recorded is None:
        return REDUCED_TOLERANCE
    return recorded + REDUCED_MARGIN


def probe_difference(
    backend: Backend, reference: ReferenceOutputs, preprocessing: Preprocessing
) -> float:
    """The largest relative difference of ``backend`` from ``reference`` on the probes,
    measured, never refused (what ``int8_ranges`` records beside the ranges)."""
    return check_graph_against_card(backend, reference, preprocessing, tolerance=math.inf)
