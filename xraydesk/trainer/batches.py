"""Images to batches, prepared one batch ahead in a background thread.

A thread rather than DataLoader worker processes: decoding a radiograph takes about a
millisecond, far less than a training step, so one thread keeps up; threads need no
fork (unsafe inside a Qt application) and start instantly. Resizing and augmenting are
torch and PIL calls that release the GIL.

A file that fails to load mid-run (deleted, or changed since it was checked) does not
stop training: it is replaced in its batch by another image of the same batch and
reported once.

On a GPU the model outruns one loading thread by far. ``configure_loading`` (the recipe's
GPU run) sets several loading threads, each building whole batches (the order and every
augmentation draw stay the same, since both come from the seed and the position), and an
in-memory cache of resized images, so each file is decoded and resized once per run
rather than once per epoch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xraydesk.errors import ImageLoadError
from xraydesk.imaging import load_xray
from xraydesk.model.device import use_one_torch_thread_here
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.optional import has_torch
from xraydesk.trainer.dataset import Sample

if TYPE_CHECKING:
    from xraydesk.trainer.augment import AugmentConfig

log = logging.getLogger(__name__)


@dataclass
class LoadingPlan:
    """How batches are loaded: threads, and how many bytes of resized images to keep."""

    workers: int = 1
    cache_bytes: int = 0
    cache: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict)
    cached_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_PLAN = LoadingPlan()


def configure_loading(workers: int = 1, cache_bytes: int = 0) -> None:
    """Loading threads and the in-memory cache of resized images (0: no cache)."""
    global _PLAN
    _PLAN = LoadingPlan(workers=max(1, int(workers)), cache_bytes=max(0, int(cache_bytes)))


def _resized(path: Path, prep: Preprocessing) -> np.ndarray:
    """The resized unit image (1, S, S), from the cache when the plan keeps one."""
    plan = _PLAN
    if not plan.cache_bytes:
        return prep.resize_unit(load_xray(path).render())
    key = (str(path), prep.size, prep.resize)
    hit = plan.cache.get(key)
    if hit is not None:
        return hit.copy()
    resized = prep.resize_unit(load_xray(path).render())
    with plan.lock:
        if plan.cached_bytes + resized.nbytes <= plan.cache_bytes:
            plan.cache[key] = resized.copy()
            plan.cached_bytes += resized.nbytes
    return resized


def load_input(
    path: Path,
    prep: Preprocessing,
    aug: AugmentConfig | None = None,
    seed_key: tuple[int, int, int] | None = None,
) -> Any:
    """One image to a model input (C, S, S); augmented when ``aug`` and ``seed_key`` are
    given (a torch tensor then: augmentation is torch), else a numpy array."""
    resized = _resized(path, prep)
    if aug is not None and seed_key is not None:
        import torch

        from xraydesk.trainer.augment import augment, sample_rng

        return prep.finish(augment(torch.from_numpy(resized), sample_rng(*seed_key), aug))
    return prep.finish(resized)


@dataclass
class Batch:
    indices: list[int]  # sample indices actually in the batch (after substitutions)
    inputs: Any  # (N, C, S, S) float32, N >= len(indices) when padded: torch where
    # torch is installed (training's steps take it), numpy in the light build
    ok: list[bool] = field(default_factory=list)  # per requested image: loaded (not stood in)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def batch_iterator(
    samples: Sequence[Sample],
    batches: Sequence[Sequence[int]],
    prep: Preprocessing,
    aug: AugmentConfig | None = None,
    seed: int = 0,
    epoch: int = 0,
    first_position: int = 0,
    pad_to: int | None = None,
) -> Iterator[Batch]:
    """Yield the batches in order, loading the next ones while the caller computes.

    ``first_position`` is the position in the epoch of the first sample of the first batch
    (so augmentation draws match an uninterrupted epoch when resuming mid-epoch).
    ``pad_to`` repeats the last image to a fixed batch size: each new input shape costs a
    oneDNN kernel compilation of several seconds, so evaluation keeps one shape.
    """
    positions = []
    pos = first_position
    for b in batches:
        positions.append(pos)
        pos += len(b)

    def make(k: int) -> Batch:
        return _make_batch(samples, list(batches[k]), prep, aug, seed, epoch, positions[k], pad_to)

    yield from prefetch(make, len(batches))


def prefetch(make: Callable[[int], Batch], count: int, depth: int = 2) -> Iterator[Batch]:
    if count == 0:
        return
    workers = _PLAN.workers
    depth = max(depth, workers + 1)
    with ThreadPoolExecutor(
        max_workers=workers,
        thread_name_prefix="xraydesk-batches",
        initializer=use_one_torch_thread_here,
    ) as pool:
        pending: dict[int, Future[Batch]] = {}
        try:
            for k in range(count):
                for ahead in range(k, min(count, k + depth)):
                    if ahead not in pending:
                        pending[ahead] = pool.submit(make, ahead)
                yield pending.pop(k).result()
        finally:
            for future in pending.values():
                future.cancel()


def _make_batch(
    samples: Sequence[Sample],
    indices: list[int],
    prep: Preprocessing,
    aug: AugmentConfig | None,
    seed: int,
    epoch: int,
    position: int,
    pad_to: int | None,
) -> Batch:
    tensors: list[Any] = []
    failed = []
    for offset, i in enumerate(indices):
        key = (seed, epoch, position + offset) if aug is not None else None
        try:
            tensors.append(load_input(samples[i].path, prep, aug, key))
        except ImageLoadError as exc:
            log.warning("%s", exc)
            failed.append((samples[i].path, exc.cause))
            tensors.append(None)
    good = [k for k, t in enumerate(tensors) if t is not None]
    if not good:
        return Batch(indices=[], inputs=np.empty(0), ok=[False] * len(indices), failed=failed)
    kept = list(indices)
    ok = [t is not None for t in tensors]
    for k, t in enumerate(tensors):
        if t is None:  # stand in another image of this batch, so the shape stays fixed
            donor = good[k % len(good)]
            tensors[k], kept[k] = tensors[donor], indices[donor]
    if pad_to is not None and len(tensors) < pad_to:
        tensors += [tensors[-1]] * (pad_to - len(tensors))
    return Batch(indices=kept, inputs=_stack(tensors), ok=ok, failed=failed)


def _stack(inputs: list[Any]) -> Any:
    """One batch: a torch tensor where torch is installed, else a numpy array."""
    if not has_torch():
        return np.stack(inputs)
    import torch

    return torch.stack([torch.as_tensor(x) for x in inputs])
