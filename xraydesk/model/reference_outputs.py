"""What a model's network computes on a few fixed probe images, saved with its card.

Every exported graph (``runtime.export``) is checked once against the network it came
from before it is used. Checking against torch meant importing torch and loading the
network at a model's first run: seconds and half a gigabyte more than every later run.
The card instead carries the fp32 outputs of the weights on seeded probe inputs, made
with numpy alone, so the check needs nothing but the graph's own runtime: the light build
checks its exports too, and the full build's first classify imports no torch.

The outputs are kept small: the logits in full, the pooled features and the last stage's
activations as seeded random projections. A broken export (a graph cut at the wrong
layer, a transposed or swapped output, a runtime bug) moves them by far more than the
1e-6 or so that another summation order does; ``TOLERANCE`` sits between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xraydesk.errors import ModelError
from xraydesk.model.preprocessing import Preprocessing

if TYPE_CHECKING:
    from torch import nn

PROBE_KIND = "smooth-bilinear-8x8"  # how ``probe_inputs`` makes its images (saved)
PROBE_COUNT = 4
PROBE_SEED = 13
PROJECTION_SEED = 29
PROJECTIONS = 8
TOLERANCE = 1e-3  # largest difference allowed, relative to the largest magnitude
# A graph that computes in int8 by design (``runtime.int8_graph``) differs from fp32 by its
# rounding, so it is held to the difference its ranges gave where they were measured
# (``int8_ranges``: ``probe_difference``) plus ``REDUCED_MARGIN``: the same ranges and
# weights give the same integer arithmetic on any CPU with VNNI. Measured on the probes
# (AMD EPYC Zen 4, OpenVINO 2026.4): the shipped int8 graphs of both bundled models
# 0.0024-0.0072; chest-3class's int8 graph with every range a third of the calibrated one
# 0.066, three times it 0.035, ten times 0.137. So a graph built with wrong ranges, layers
# or scales is refused. ``REDUCED_TOLERANCE`` where no difference was recorded.
REDUCED_MARGIN = 0.02
REDUCED_TOLERANCE = 0.03
OUTPUTS = ("logits", "features", "activations")


def probe_inputs(
    preprocessing: Preprocessing, count: int = PROBE_COUNT, seed: int = PROBE_SEED
) -> np.ndarray:
    """(count, C, size, size) float32: smooth seeded fields in [0, 1] (a coarse 8 x 8 grid
    bilinearly enlarged, no patient image), normalised as the card says."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((count, 8, 8))
    size = preprocessing.size
    grid = _bilinear_matrix(8, size)  # (size, 8)
    unit = np.einsum("ij,njk,lk->nil", grid, coarse, grid)
    batch = (np.clip(unit, 0.0, 1.0) - preprocessing.mean) / preprocessing.std
    batch = np.repeat(batch[:, None], preprocessing.channels, axis=1)
    return np.ascontiguousarray(batch, dtype=np.float32)


def _bilinear_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) weights of linear interpolation between pixel centres."""
    centres = (np.arange(target) + 0.5) * source / target - 0.5
    centres = np.clip(centres, 0, source - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, source - 1)
    frac = centres - low
    out = np.zeros((target, source))
    out[np.arange(target), low] += 1.0 - frac
    out[np.arange(target), high] += frac
    return out


def summarise(logits: np.ndarray, features: np.ndarray, activations: np.ndarray) -> dict:
    """The saved form of one forward pass of the probes: logits (N, classes); features
    (N, D) and activations (N, D, h, w) projected onto ``PROJECTIONS`` seeded directions
    (the activations also weighted by a seeded map over h, w, so a transposed or shifted
    map changes them)."""
    feats = np.asarray(features, dtype=np.float64)
    acts = np.asarray(activations, dtype=np.float64)
    n, d = feats.shape
    if acts.ndim != 4 or acts.shape[:2] != (n, d):
        raise ModelError(f"activations of shape {acts.shape} do not match features {feats.shape}")
    rng = np.random.default_rng(PROJECTION_SEED)
    directions = rng.standard_normal((d, PROJECTIONS)) / math.sqrt(d)
    spatial = rng.standard_normal((PROJECTIONS, *acts.shape[2:]))
    return {
        "logits": np.asarray(logits, dtype=np.float64),
        "features": feats @ directions,
        "activations": np.einsum("ndhw,dk,khw->nk", acts, directions, spatial),
    }


@dataclass(frozen=True)
class ReferenceOutputs:
    """The probes' fp32 outputs of a card's weights (``summarise``'s three arrays, kept
    as rows of floats so that cards compare and hash as plain values)."""

    logits: tuple[tuple[float, ...], ...]
    features: tuple[tuple[float, ...], ...]
    activations: tuple[tuple[float, ...], ...]
    probes: str = PROBE_KIND
    count: int = PROBE_COUNT
    seed: int = PROBE_SEED

    @classmethod
    def from_arrays(cls, **arrays: np.ndarray) -> ReferenceOutputs:
        """From ``summarise``'s arrays, rounded as they are saved."""
        return cls(**{name: _rows(arrays[name]) for name in OUTPUTS})

    def inputs(self, preprocessing: Preprocessing) -> np.ndarray:
        return probe_inputs(preprocessing, self.count, self.seed)

    def largest_difference(self, logits: np.ndarray, features: np.ndarray, activations) -> dict:
        """{output: largest difference relative to the reference's largest magnitude} of
        one forward pass of the probes (inf where a shape differs or a value is not
        finite)."""
        try:
            got = summarise(logits, features, activations)
        except (ModelError, ValueError):
            return dict.fromkeys(OUTPUTS, math.inf)
        return self._differences(got)

    def largest_difference_from(self, other: ReferenceOutputs) -> dict:
        """``largest_difference`` against another saved record (same probes)."""
        return self._differences({name: np.asarray(getattr(other, name)) for name in OUTPUTS})

    def _differences(self, got: dict[str, np.ndarray]) -> dict[str, float]:
        out = {}
        for name in OUTPUTS:
            want, have = np.asarray(getattr(self, name)), got[name]
            if want.shape != have.shape:
                out[name] = math.inf
                continue
            diff = float(np.abs(want - have).max()) / (float(np.abs(want).max()) + 1e-6)
            out[name] = diff if math.isfinite(diff) else math.inf
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "probes": self.probes,
            "count": self.count,
            "seed": self.seed,
            **{name: [list(row) for row in getattr(self, name)] for name in OUTPUTS},
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ReferenceOutputs | None:
        """The checked record of a card's ``reference_outputs`` (None when absent), or
        ``ModelError`` naming the card and what is wrong. (Whether the logits have one
        column per class is the weights' check, which names both numbers.)"""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ModelError(f"{where}: reference_outputs must be an object")
        if data.get("probes") != PROBE_KIND:
            raise ModelError(f"{where}: reference_outputs of unknown probes {data.get('probes')!r}")
        try:
            count, seed = int(data["count"]), int(data["seed"])
            arrays = {name: np.asarray(data[name], dtype=np.float64) for name in OUTPUTS}
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ModelError(f"{where}: malformed reference_outputs ({exc})") from None
        if not 1 <= count <= 64:
            raise ModelError(f"{where}: reference_outputs count {count} is not 1..64")
        for name, array in arrays.items():
            columns = PROJECTIONS if name != "logits" else array.shape[-1] if array.ndim else 0
            if array.shape != (count, columns) or not columns or not np.isfinite(array).all():
                wanted = f"{count} x {columns or 'N'}"
                raise ModelError(
                    f"{where}: reference_outputs.{name} must be {wanted} finite numbers"
                )
        return cls(**{k: _rows(v) for k, v in arrays.items()}, count=count, seed=seed)


def _rows(values: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """Nine significant digits: far finer than ``TOLERANCE``, and a short card."""
    return tuple(tuple(float(f"{v:.9g}") for v in row) for row in np.asarray(values))


def reference_outputs(network: nn.Module, preprocessing: Preprocessing) -> ReferenceOutputs | None:
    """The probes through ``network`` at fp32 on the CPU, as a card saves them (torch: at
    training time, or where a card made before them is checked); None when they are not
    finite numbers (a broken network: nothing to check a graph against, and its card
    still loads, so that classifying says what is wrong)."""
    import copy

    import torch

    from xraydesk.model.three_outputs import ThreeOutputs

    first = next(network.parameters())
    if first.device.type != "cpu" or first.dtype != torch.float32:
        network = copy.deepcopy(network).to("cpu", torch.float32)  # never move the caller's
    probes = probe_inputs(preprocessing)
    training = network.training
    try:
        with torch.no_grad():
            logits, features, activations = ThreeOutputs(network.eval())(torch.from_numpy(probes))
    finally:
        network.train(training)  # a network in training stays so
    saved = summarise(logits.numpy(), features.numpy(), activations.numpy())
    if not all(np.isfinite(array).all() for array in saved.values()):
        return None
    return ReferenceOutputs.from_arrays(**saved)
