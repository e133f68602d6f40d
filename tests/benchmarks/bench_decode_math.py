"""Issue 28's per-image arithmetic around the model: the anti-aliased resize
(``imaging.resample.resize``) and the attention check's lung shares
(``trust.attention.lung_shares``), each against the implementation it replaced.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_decode_math.py [--rounds 7]

Figures are process CPU time per call (``time.process_time``: BLAS threads count too),
the median over ``--rounds`` interleaved rounds (old, new, old, new ...), so the ratios
hold on a busy machine. The baselines are kept here only: the resize as a gather of each
triangle tap in turn, and the lung shares as a 160 px resize of each class map and a sum
over the chest mask per image. Cases: a pool's 224 px film to the model input (160) and
to the gate's thumbnail (64), a full-size 2500 x 2048 film to 160, and the shares of a
batch of 32 maps 5 x 5 (chest-3class at 160 px) for a stretching and a letterboxing
model with films of mixed shapes. Also printed: the largest difference old vs new.
Without OMP_NUM_THREADS=1 OpenBLAS may use its threads; CPU time above wall time shows it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402
from xraydesk.imaging.resample import _taps, resize  # noqa: E402
from xraydesk.model.preprocessing import Preprocessing  # noqa: E402
from xraydesk.trust.attention import lung_shares  # noqa: E402
from xraydesk.trust.lung_fields import boxed_chest_mask, chest_mask, film_box  # noqa: E402

BATCH = 32
FEATURES = 64  # channels of the stand-in's last stage (the sum over them is the same old/new)
SHAPES = [None, (224, 224), (350, 256), (256, 269), (2500, 2048), (1024, 1024)]


def tap_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The resize as it was: per pass, each tap gathered with ``np.take`` and summed."""
    image = np.asarray(image, dtype=np.float32)
    passes = [(height, 0), (width, 1)] if height < image.shape[0] else [(width, 1), (height, 0)]
    for size, axis in passes:
        if image.shape[axis] == size:
            continue
        index, weight = _taps(image.shape[axis], size)
        taps = [
            weight[:, k, None] if axis == 0 else weight[None, :, k] for k in range(index.shape[1])
        ]
        out = np.take(image, index[:, 0], axis=axis)
        out *= taps[0]
        tmp = np.empty_like(out)
        for k in range(1, index.shape[1]):
            np.take(image, index[:, k], axis=axis, out=tmp)
            tmp *= taps[k]
            out += tmp
        image = out
    return np.ascontiguousarray(image)


class StandIn:
    """What ``lung_shares`` needs of a classifier: its preprocessing and ``class_maps``
    (the head's rows times the activations, ReLU), with a random head."""

    def __init__(self, preprocessing: Preprocessing, rng: np.random.Generator) -> None:
        self.preprocessing = preprocessing
        self.head = (rng.standard_normal((3, FEATURES)).astype(np.float32),)

    def class_maps(self, activations: np.ndarray, indices) -> np.ndarray:
        weight = self.head[0][np.asarray(indices, dtype=np.int64)]
        return np.maximum(np.einsum("nd,ndhw->nhw", weight, activations), 0.0)


def old_lung_shares(classifier, activations, probabilities, shapes=None) -> np.ndarray:
    """The shares as they were: per image, its chest mask (made afresh for a letterboxed
    film that is not square), the map resized to the input square and the masked sum."""
    maps = classifier.class_maps(activations, np.asarray(probabilities).argmax(axis=1))
    prep = classifier.preprocessing
    out = np.full(len(maps), np.nan)
    for n, small in enumerate(maps):
        box = film_box(prep, None if shapes is None else shapes[n])
        # the masks of letterboxed films were made afresh for each image, not cached
        full = box == (0, 0, prep.size, prep.size)
        mask = chest_mask(prep.size) if full else boxed_chest_mask.__wrapped__(prep.size, box)
        cam = small - small.min()
        if not np.isfinite(cam).all() or cam.max() <= 0:
            continue
        up = np.maximum(tap_resize(cam, *mask.shape), 0.0)
        total = float(up.sum())
        out[n] = float(up[mask].sum() / total) if total > 0 else np.nan
    return out


def cpu_ms(work: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        work()
    return 1e3 * (time.process_time() - start) / calls


Case = tuple[str, Callable[[], object], Callable[[], object], int]


def _resize_case(image: np.ndarray, side: int, calls: int) -> Case:
    name = f"resize {image.shape[0]}x{image.shape[1]} -> {side}"
    return name, lambda: tap_resize(image, side, side), lambda: resize(image, side, side), calls


def cases(rng: np.random.Generator) -> list[Case]:
    """(name, old call, new call, calls per round)."""
    small = rng.random((224, 224), dtype=np.float32)
    film = rng.random((2500, 2048), dtype=np.float32)
    out = [_resize_case(small, 160, 400), _resize_case(small, 64, 400), _resize_case(film, 160, 10)]
    activations = rng.random((BATCH, FEATURES, 5, 5), dtype=np.float32)
    probs = rng.dirichlet(np.ones(3), BATCH)
    shapes = [SHAPES[n % len(SHAPES)] for n in range(BATCH)]
    for policy in ("stretch", "letterbox"):
        model = StandIn(Preprocessing(size=160, resize=policy), rng)
        out.append(
            (
                f"lung_shares {policy}, batch of {BATCH}",
                lambda m=model: old_lung_shares(m, activations, probs, shapes),
                lambda m=model: lung_shares(m, activations, probs, shapes),  # type: ignore[arg-type]
                20,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    args = parser.parse_args(argv)

    print(f"CPU: {cpu_name()}")
    print(f"load average before: {load_average()}")
    rng = np.random.default_rng(0)
    print(f"{'case':34} {'old ms':>9} {'new ms':>9} {'old/new':>8} {'max diff':>9}")
    for name, old, new, calls in cases(rng):
        diff = float(np.nanmax(np.abs(np.asarray(old()) - np.asarray(new()))))  # also warms caches
        times: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            times["old"].append(cpu_ms(old, calls))
            times["new"].append(cpu_ms(new, calls))
        a, b = statistics.median(times["old"]), statistics.median(times["new"])
        per = f" ({a / BATCH:.4f} -> {b / BATCH:.4f} per image)" if "batch" in name else ""
        print(f"{name:34} {a:9.4f} {b:9.4f} {a / b:8.1f} {diff:9.1e}{per}")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
