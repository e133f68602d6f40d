"""A check of every new export: the graph must compute what the torch network computes.

A few seeded smooth images (no patient image ships with the app) go through fp32 torch
and through the new graph at fp32 in the runtime about to use it. A broken export (an
exporter or runtime bug, a graph cut at the wrong layer) differs by far more than the
1e-6 or so that a different summation order makes; the check refuses it, deletes the
graph and leaves the model on torch. It says nothing about bf16 or int8 rounding on real
radiographs: that is what the shipped verdicts (``faithful``) are for.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xraydesk.model.preprocessing import Preprocessing
from xraydesk.runtime.backend import Backend, RuntimeUnavailable
from xraydesk.runtime.graph import ThreeOutputs

TOLERANCE = 1e-3  # relative to the largest magnitude of each output


def probe_inputs(preprocessing: Preprocessing, count: int = 4, seed: int = 13) -> np.ndarray:
    """(count, C, size, size) float32: smooth seeded fields, normalised as the card says."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((count, 1, 8, 8), dtype=np.float32))
    size = preprocessing.size
    unit = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    batch = (unit.clamp(0, 1) - preprocessing.mean) / preprocessing.std
    return batch.expand(-1, preprocessing.channels, -1, -1).contiguous().numpy()


def check_graph(backend: Backend, network: nn.Module, preprocessing: Preprocessing) -> float:
    """The largest relative difference between ``backend`` and fp32 torch on the probes;
    raises ``RuntimeUnavailable`` above ``TOLERANCE``."""
    probes = probe_inputs(preprocessing)
    first = next(network.parameters())
    if first.device.type != "cpu" or first.dtype != torch.float32:
        network = copy.deepcopy(network).to("cpu", torch.float32)  # never move the caller's
    with torch.no_grad():
        reference = ThreeOutputs(network.eval())(torch.from_numpy(probes))
    out = backend.run(probes, activations=True)
    worst = 0.0
    for name, ref, got in zip(
        ("logits", "features", "activations"),
        reference,
        (out.logits, out.features, out.activations),
        strict=True,
    ):
        assert got is not None
        want = ref.float().numpy()
        scale = float(np.abs(want).max()) + 1e-6
        diff = float(np.abs(want - got).max()) / scale
        worst = max(worst, diff)
        if not diff <= TOLERANCE:  # also catches NaN
            raise RuntimeUnavailable(
                f"the exported graph's {name} differ from torch's by {diff:.2e} of their "
                f"range on the probes (allowed {TOLERANCE:.0e}): export refused"
            )
    return worst
