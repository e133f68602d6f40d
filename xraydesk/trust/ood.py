"""Out-of-distribution score: how unlike the model's own training images is this one?

Mahalanobis distance (Lee et al., NeurIPS 2018) on the pooled penultimate features,
with one covariance shared by the classes and Ledoit-Wolf shrinkage, to the nearest
class mean. The statistics are computed on the training split when a model is made and
stored in its card (``card.training["ood"]``), with a threshold: the 97th percentile of
the score on the validation split, so 97 % of in-distribution images pass. (95 % left
the untouched test-split radiographs' flag rate at the 5 % limit it must stay under:
5.3 % of 300 in the trust benchmark; the gate's own false alarms add to it.)

The covariance is stored as its top ``rank`` eigenvectors plus one variance for all
remaining directions (the mean of the remaining shrunk eigenvalues). That keeps the card
small (the full 2048 x 2048 precision would be 16 MB) while the distance still counts
how far an image leaves the training images' main directions.

A card without the statistics (made before this existed) loads as before; the score is
then unavailable and ``describe`` says so: no out-of-distribution warning is possible.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xraydesk.blas import matmul_on_this_thread
from xraydesk.model.card import ModelCard
from xraydesk.trust.codes import OUT_OF_DISTRIBUTION, ResultWarning

OOD_KEY = "ood"  # where the statistics live in card.training
METHOD = "mahalanobis-shared-covariance/1"
DEFAULT_RANK = 32
PASS_QUANTILE = 0.97
NO_STATISTICS = (
    "this model's card has no out-of-distribution statistics (it was made before they "
    "existed), so no out-of-distribution warning is possible"
)


@dataclass
class OODStatistics:
    means: np.ndarray  # (classes, features) class means of the training features
    components: np.ndarray  # (features, rank) top eigenvectors of the shared covariance
    eigenvalues: np.ndarray  # (rank,) their shrunk variances
    residual: float  # the shrunk variance of every other direction
    threshold: float  # scores above this are out of distribution
    details: dict[str, Any] = field(default_factory=dict)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest class mean, divided by the feature
        count (so scores of different models are of similar size). (N, D) -> (N,).

        Two products per call, whatever the number of classes: the features' projections
        on the components and on the class means (the differences to each mean follow by
        subtraction), each cut under OpenBLAS's threading threshold (``xraydesk.blas``).
        The batch engine scores every batch on its main thread while the model waits."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x[None]
        means, comps, inv, mean_proj, mean_sq = self._float64
        projected = matmul_on_this_thread(x, comps)  # (N, rank)
        against_means = matmul_on_this_thread(x, means.T)  # (N, classes)
        squared = np.einsum("nd,nd->n", x, x)
        best = np.full(len(x), np.inf)
        for c in range(len(means)):
            z = projected - mean_proj[c]
            inside = (z * z) @ inv
            distance = squared - 2.0 * against_means[:, c] + mean_sq[c]  # |x - mean|^2
            outside = (distance - np.einsum("nk,nk->n", z, z)).clip(0)
            best = np.minimum(best, inside + outside / self.residual)
        return best / x.shape[1]

    @functools.cached_property
    def _float64(self) -> tuple[np.ndarray, ...]:
        """Means, components, inverse eigenvalues, the means' projections and squared
        norms, in float64: computed once, not per batch."""
        means = self.means.astype(np.float64)
        comps = self.components.astype(np.float64)
        inv = 1.0 / self.eigenvalues.astype(np.float64)
        return means, comps, inv, means @ comps, np.einsum("cd,cd->c", means, means)

    @property
    def pass_rate(self) -> float:
        """The share of validation images under the threshold (0.95 in older cards)."""
        return float(self.details.get("validation_pass_rate", 0.95))

    def warning(self, score: float) -> ResultWarning | None:
        if not np.isfinite(score) or score > self.threshold:
            return ResultWarning(
                OUT_OF_DISTRIBUTION,
                f"the image is unlike this model's training images (score {score:.2f}, "
                f"threshold {self.threshold:.2f}, which {self.pass_rate:.0%} of validation "
                "images pass)",
            )
        return None

    # -- in the card ----------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "threshold": float(self.threshold),
            "residual_variance": float(self.residual),
            "details": self.details,
            "arrays": {
                "means": _encode(self.means),
                "components": _encode(self.components),
                "eigenvalues": _encode(self.eigenvalues, np.float32),
            },
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> OODStatistics:
        if record.get("method") != METHOD:
            raise ValueError(f"unknown out-of-distribution method {record.get('method')!r}")
        arrays = record["arrays"]
        stats = cls(
            means=_decode(arrays["means"]),
            components=_decode(arrays["components"]),
            eigenvalues=_decode(arrays["eigenvalues"]),
            residual=float(record["residual_variance"]),
            threshold=float(record["threshold"]),
            details=dict(record.get("details", {})),
        )
        rank = stats.eigenvalues.shape[0]
        if (
            stats.means.ndim != 2
            or stats.components.shape != (stats.means.shape[1], rank)
            or not np.all(stats.eigenvalues > 0)
            or not stats.residual > 0
            or not np.isfinite(stats.threshold)
        ):
            raise ValueError("inconsistent out-of-distribution statistics")
        return stats

    @classmethod
    def from_card(cls, card: ModelCard) -> OODStatistics | None:
        """The card's statistics, or None when it has none or they are unusable."""
        record = card.training.get(OOD_KEY)
        if not isinstance(record, dict):
            return None
        try:
            return cls.from_record(record)
        except (KeyError, TypeError, ValueError):
            return None

    def store(self, card: ModelCard) -> None:
        card.training[OOD_KEY] = self.to_record()


def describe(card: ModelCard) -> str:
    """One line for the user: what out-of-distribution check this model has."""
    stats = OODStatistics.from_card(card)
    if stats is None:
        if OOD_KEY in card.training:
            return "this model's out-of-distribution statistics are unreadable, so no " \
                "out-of-distribution warning is possible"  # fmt: skip
        return NO_STATISTICS
    n = stats.details.get("train_images", "?")
    return (
        f"out-of-distribution check: Mahalanobis distance on the model's features "
        f"({n} training images), threshold {stats.threshold:.2f}"
    )


def fit(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    num_classes: int,
    rank: int = DEFAULT_RANK,
    quantile: float = PASS_QUANTILE,
) -> OODStatistics:
    """Statistics from training features and labels; threshold from validation features."""
    x = np.asarray(train_features, dtype=np.float64)
    labels = np.asarray(train_labels, dtype=np.int64)
    n, dim = x.shape
    means = np.zeros((num_classes, dim))
    for c in range(num_classes):
        if np.any(labels == c):
            means[c] = x[labels == c].mean(0)
        else:  # a class with no training image: never the nearest mean
            means[c] = np.inf
    present = [c for c in range(num_classes) if np.any(labels == c)]
    centred = x - means[labels]
    cov = centred.T @ centred / n
    shrink = _ledoit_wolf(centred, cov)
    mu = float(np.trace(cov)) / dim
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values = (1 - shrink) * values[order].clip(0) + shrink * mu
    vectors = vectors[:, order]
    rank = min(rank, dim - 1)
    residual = float(values[rank:].mean())
    stats = OODStatistics(
        means=means[present].astype(np.float32),
        components=vectors[:, :rank].astype(np.float32),
        eigenvalues=values[:rank].astype(np.float32),
        residual=residual,
        threshold=np.inf,
    )
    # Thresholds are taken on the stored (float16) arrays, as a loaded card scores.
    stats = OODStatistics.from_record(stats.to_record() | {"threshold": 0.0})
    val_scores = stats.score(val_features)
    stats.threshold = float(np.quantile(val_scores, quantile))
    stats.details = {
        "features": f"pooled penultimate features ({dim})",
        "train_images": int(n),
        "validation_images": len(val_scores),
        "rank": int(rank),
        "shrinkage": round(float(shrink), 6),
        "validation_pass_rate": quantile,
    }
    return stats


def _ledoit_wolf(centred: np.ndarray, cov: np.ndarray) -> float:
    """The Ledoit-Wolf shrinkage intensity towards a scaled identity."""
    n, dim = centred.shape
    mu = float(np.trace(cov)) / dim
    d2 = float(np.sum((cov - mu * np.eye(dim)) ** 2))
    if d2 <= 0:
        return 1.0
    norms = np.einsum("nd,nd->n", centred, centred)
    b2 = float(np.sum(norms**2)) / n**2 - float(np.sum(cov**2)) / n
    return float(min(max(b2, 0.0), d2) / d2)


def _encode(array: np.ndarray, dtype: type = np.float16) -> dict[str, Any]:
    data = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    return {
        "shape": list(data.shape),
        "dtype": np.dtype(dtype).name,
        "base64": base64.b64encode(data.tobytes()).decode("ascii"),
    }


def _decode(record: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(str(record["dtype"])).newbyteorder("<")
    if dtype.kind != "f":
        raise ValueError("statistics must be floating point")
    raw = base64.b64decode(record["base64"], validate=True)
    array = np.frombuffer(raw, dtype=dtype).reshape([int(s) for s in record["shape"]])
    if not np.all(np.isfinite(array)):
        raise ValueError("statistics contain NaN or infinity")
    return array.astype(np.float32)
