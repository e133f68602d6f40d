"""Quick mode: a frozen backbone and a logistic-regression head.

The features come from torch where it is installed (also from a random backbone, whose
batch norm is first calibrated), and in the light build from the base model's exported
runtime (``Classifier``): the same pooled features either way; the new weights are then
the base model's file with the head replaced.

The backbone's pooled features are computed once per image and cached on disk, keyed by
the backbone's weights (sha256 of its state, the head excluded), the preprocessing and
the precision, and by the image file's content hash. A second run on the same data (a
resumed run, another class set, another regularisation) costs seconds. The head is
fitted (``trainer.logistic``, L-BFGS) on standardised features; the standardisation is
folded into the weights, which are written into the network's own linear layer, so the
result is an ordinary model: the viewer, batch classification and Grad-CAM use it
unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xraydesk import paths
from xraydesk.model.device import DeviceChoice
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.progress import Rate
from xraydesk.trainer.batches import batch_iterator
from xraydesk.trainer.config import RunContext, Trained
from xraydesk.trainer.dataset import Sample
from xraydesk.trainer.forward import Forward, run_forward, torch_forward
from xraydesk.trainer.logistic import SoftmaxFit, balanced_weights, fit_softmax
from xraydesk.trainer.metrics import negative_log_likelihood, softmax
from xraydesk.trainer.progress import Reporter, TrainingStage

if TYPE_CHECKING:
    from torch import nn

C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)  # inverse L2 strength, rising
FEATURE_FORMAT = "xraydesk-features/1"
CALIBRATION_IMAGES = 64


def backbone_key(state: Mapping[str, np.ndarray], prep: Preprocessing, precision: str) -> str:
    """What the features depend on: backbone weights (the state without the head, float32
    as the network holds them), preprocessing, precision."""
    digest = hashlib.sha256()
    digest.update(FEATURE_FORMAT.encode())
    digest.update(json.dumps(prep.to_dict(), sort_keys=True).encode())
    digest.update(precision.encode())
    for name, array in sorted(state.items()):
        if name.startswith("fc."):
            continue
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def network_state(network: nn.Module) -> dict[str, np.ndarray]:
    """A torch network's weights as numpy arrays (float32, as it holds them)."""
    return {k: v.detach().cpu().contiguous().numpy() for k, v in network.state_dict().items()}


class FeatureCache:
    """One small .npy per image (float16: a 2048-vector is 4 KB), written atomically."""

    def __init__(self, key: str, root: Path | None = None) -> None:
        self.key = key
        self.root = (root or paths.cache_dir() / "features") / key[:32]

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.npy"

    def get(self, sha256: str) -> np.ndarray | None:
        path = self._path(sha256)
        try:
            return np.load(path).astype(np.float32)
        except (OSError, ValueError, EOFError):  # missing, or damaged by a crash: recompute
            return None

    def put(self, sha256: str, features: np.ndarray) -> None:
        path = self._path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, features.astype(np.float16))
        os.replace(tmp, path)


def calibrate_batchnorm(
    network: nn.Module,
    samples: Sequence[Sample],
    indices: Sequence[int],
    prep: Preprocessing,
    device: DeviceChoice,
    seed: int,
    batch_size: int = 16,
) -> None:
    """Set batch-norm statistics from real images (a random network has none).

    A randomly initialised ResNet with unit running statistics blows activations up
    stage by stage; features from it are numerically useless. Averaging the statistics
    over a few dozen training images makes random features usable.
    """
    import torch
    from torch import nn

    rng = np.random.default_rng(seed)
    chosen = [indices[i] for i in rng.permutation(len(indices))[:CALIBRATION_IMAGES]]
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all calibration batches
    network.to(device.device, memory_format=device.memory_format).train()
    batches = [chosen[k : k + batch_size] for k in range(0, len(chosen), batch_size)]
    for batch in batch_iterator(samples, batches, prep):
        if batch.indices:
            x = batch.inputs.to(device.device).contiguous(memory_format=device.memory_format)
            with torch.no_grad():
                network(x)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    network.eval()


@dataclass
class Features:
    values: np.ndarray  # (N, D) float32, NaN rows for images that failed to load
    ok: np.ndarray  # (N,) bool
    cached: int  # how many came from the cache
    key: str


def extract_features(
    forward: Forward,
    key: str,
    samples: Sequence[Sample],
    prep: Preprocessing,
    batch_size: int,
    reporter: Reporter,
) -> Features:
    """Every sample's pooled features by ``forward``, from the cache under ``key``
    (``backbone_key``) where an earlier run computed them."""
    cache = FeatureCache(key)
    found: dict[int, np.ndarray] = {}
    for i, s in enumerate(samples):
        features = cache.get(s.sha256)
        if features is not None:
            found[i] = features
    missing = [i for i in range(len(samples)) if i not in found]
    total = len(samples)
    meter = Rate()

    def on_batch(done: int, _total: int, out: np.ndarray, idx: list[int], ok: list[bool]) -> None:
        for row, i, good in zip(out, idx, ok, strict=True):
            if good:
                cache.put(samples[i].sha256, row)
        rate = meter.add(len(idx))
        left = len(missing) - done
        reporter.emit(
            TrainingStage.FEATURES,
            message=f"Computing image features ({len(found)} cached)",
            done=len(found) + done,
            total=total,
            rate=rate,
            eta=left / rate if rate else None,
        )

    reporter.emit(
        TrainingStage.FEATURES, message="Computing image features", done=len(found), total=total
    )
    computed, ok_missing = run_forward(
        forward, samples, missing, prep, batch_size, reporter, on_batch
    )
    width = computed.shape[1] if len(missing) else next(iter(found.values())).shape[0]
    values = np.full((total, width), np.nan, dtype=np.float32)
    ok = np.zeros(total, dtype=bool)
    for i, features in found.items():
        values[i], ok[i] = features, True
    if missing:
        values[missing] = computed
        ok[missing] = ok_missing
    return Features(values=values, ok=ok, cached=len(found), key=key)


@dataclass
class Head:
    weight: np.ndarray  # (K, D) acting on raw features
    bias: np.ndarray  # (K,)
    C: float
    search: list[dict[str, float]]  # validation NLL and accuracy for every C tried

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features.astype(np.float64) @ self.weight.T.astype(np.float64) + self.bias


def fit_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    balanced: bool,
    seed: int,
    reporter: Reporter | None = None,
) -> Head:
    """Logistic regression, C chosen by validation log-loss, folded back to raw features."""
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale[scale < 1e-6] = 1.0
    xs_train = (x_train - mean) / scale
    xs_val = (x_val - mean) / scale
    best: tuple[float, float, np.ndarray, np.ndarray] | None = None
    search = []
    # C rising, each fit starting from the last solution (warm start): the path costs
    # little more than its first fit.
    weights = balanced_weights(y_train, n_classes) if balanced else None
    fit: SoftmaxFit | None = None
    total = len(C_GRID)
    for k, c in enumerate(C_GRID):
        if reporter is not None:
            reporter.check_cancel()
            reporter.emit(
                TrainingStage.HEAD, message=f"Fitting the head (C={c:g})", done=k, total=total
            )
        fit = fit_softmax(xs_train, y_train, n_classes, c, weights, start=fit)
        w, b = fit.weight, fit.bias
        probs = softmax(xs_val @ w.T + b)
        nll = negative_log_likelihood(probs, y_val)
        acc = float((probs.argmax(axis=1) == y_val).mean())
        search.append({"C": c, "val_nll": nll, "val_accuracy": acc})
        if best is None or nll < best[0]:
            best = (nll, c, w, b)
        elif len(search) >= 3 and search[-3]["val_nll"] < search[-2]["val_nll"] < nll:
            break  # worse twice in a row past the best: weaker regularisation only overfits
        if reporter is not None:  # each fit reported as it ends, not only as it starts
            reporter.emit(
                TrainingStage.HEAD,
                message=f"Fitted the head (C={c:g}: validation loss {nll:.3f}, accuracy {acc:.1%})",
                done=k + 1,
                total=total,
            )
    assert best is not None
    _, best_c, w, b = best
    if reporter is not None:  # the search may stop early: the phase still ends at total/total
        stopped = "" if len(search) == total else f", stopped after {len(search)} of {total}"
        reporter.emit(
            TrainingStage.HEAD,
            message=f"Head fitted (C={best_c:g} chosen{stopped})",
            done=total,
            total=total,
        )
    weight = w / scale  # fold the standardisation into the layer
    bias = b - weight @ mean
    return Head(weight=weight, bias=bias, C=best_c, search=search)


def write_head(network: nn.Module, head: Head) -> None:
    import torch

    from xraydesk.model.network import set_head

    set_head(
        network,
        torch.as_tensor(head.weight, dtype=torch.float32),
        torch.as_tensor(head.bias, dtype=torch.float32),
    )


@dataclass
class Backbone:
    """Where quick mode's features come from, and the weights the head is written into."""

    forward: Forward
    key: str  # backbone_key: the feature cache's
    network: nn.Module | None  # torch: the head goes into it
    state: dict[str, np.ndarray] | None = None  # the light build: the base's weights file
    how: str = "torch"


def backbone(ctx: RunContext) -> Backbone:
    """The torch network where torch is installed, else the base model's exported runtime."""
    dev, net = ctx.device, ctx.network
    if net is not None:
        if ctx.scratch:
            ctx.reporter.emit(
                TrainingStage.FEATURES, message="Calibrating batch norm of the random backbone"
            )
            calibrate_batchnorm(
                net, ctx.samples, ctx.indices("train"), ctx.prep, dev, ctx.config.training_seed
            )
        from xraydesk.model.network import feature_extractor

        net.to(dev.device, memory_format=dev.memory_format).eval()
        extractor = feature_extractor(net).to(dev.device, memory_format=dev.memory_format)
        key = backbone_key(network_state(net), ctx.prep, str(dev.autocast_dtype))
        return Backbone(torch_forward(extractor, dev), key, net)
    from xraydesk.classifier import Classifier
    from xraydesk.model.weights import load_state, verified_weights

    if ctx.base is None:
        raise ValueError("quick mode without torch needs a base model")
    base_prep = ctx.base.preprocessing
    if (ctx.prep.size, ctx.prep.channels) != (base_prep.size, base_prep.channels):
        from xraydesk.optional import FULL_BUILD_HINT
        from xraydesk.trainer.progress import TrainingError

        raise TrainingError(  # the exported graph has the base model's input shape
            f"Quick mode at another image size than {ctx.base.label}'s "
            f"({base_prep.size} px): {FULL_BUILD_HINT}"
        )
    classifier = Classifier.load(ctx.base, device="cpu")
    runtime = classifier.backend
    state = load_state(verified_weights(ctx.base))
    key = backbone_key(state, ctx.prep, f"{runtime.runtime}/{runtime.precision}")
    return Backbone(lambda x: classifier.logits_and_features(x)[1], key, None, state, runtime.label)


def train_quick(ctx: RunContext) -> Trained:
    """Features (cached), then the head; returns validation and test logits from the features."""
    cfg, reporter = ctx.config, ctx.reporter
    train_idx, val_idx, test_idx = ctx.indices("train"), ctx.indices("val"), ctx.indices("test")
    source = backbone(ctx)
    feats = extract_features(source.forward, source.key, ctx.samples, ctx.prep, cfg.batch, reporter)
    labels = ctx.labels
    train_ok = [i for i in train_idx if feats.ok[i]]
    val_ok = [i for i in val_idx if feats.ok[i]]
    head = fit_head(
        feats.values[train_ok],
        labels[train_ok],
        feats.values[val_ok],
        labels[val_ok],
        len(ctx.classes),
        balanced=cfg.imbalance != "none",
        seed=cfg.training_seed,
        reporter=reporter,
    )
    state = None
    if source.network is not None:
        write_head(source.network, head)
    else:
        assert source.state is not None
        state = dict(source.state)
        state["fc.weight"] = head.weight.astype(np.float32)
        state["fc.bias"] = head.bias.astype(np.float32)
    failed = [
        (str(ctx.samples[i].path), "could not be loaded during training")
        for i in np.nonzero(~feats.ok)[0]
    ]
    return Trained(
        network=source.network,
        val_logits=head.logits(feats.values[val_idx]),
        test_logits=head.logits(feats.values[test_idx]),
        history=head.search,
        details={
            "head": "logistic regression (L-BFGS, L2, standardised features)",
            "C": head.C,
            "features_cached": feats.cached,
            "features_computed": len(ctx.samples) - feats.cached,
            "feature_key": feats.key[:16],
            "features_from": source.how,
            "batchnorm_calibrated": ctx.scratch,
        },
        failed=failed,
        state=state,
        features=feats.values,
    )
