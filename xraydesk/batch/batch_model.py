"""The network as a batch run executes it, and how the run shares the CPU with decoding.

``BatchModel``: batch norm folded into the convolutions, the weights stored in the
precision the classifier's device chose (bf16 on a CPU with native bf16, fp16/bf16 on
CUDA), channels-last; inputs stacked into one reused pinned buffer on CUDA, so the copy to
the GPU is asynchronous; on torch every batch of a run padded to one shape.

Why a private copy: autocast converts every weight to bf16 again on every forward pass
and batch norm is a separate pass over each activation; folding and converting once made
batched ResNet-50 inference ~20% faster on the 2-core target (fused bf16 weights 35.8
images/s against 29.3 with autocast, same run). The probabilities are those of
``Classifier.predict_tensors`` to bf16 precision (tests compare them). The copy is the
run's own, so the viewer's classifier (and its lock, held during Grad-CAM) is never
blocked by a batch. A network other than ``model.resnet``'s is copied without folding.
The fold needs no torch.fx tracing (``model.resnet.fold_batch_norms`` says why).

``CpuShare``: on a CPU the model and the decode threads compete for the same cores; it
picks a ``threads.Schedule`` per batch (measured, see ``threads``), applies it and
restores the thread count when the run ends.

Where the classifier runs on an exported CPU runtime (``xraydesk.runtime``: OpenVINO or
ONNX Runtime, chosen because it was measured faithful to fp32 torch for the model), the
batch runs through that same backend: no torch copy is folded, and the backend's own
threads do the work (``CpuShare`` still closes the decode slots while a batch runs).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from xraydesk.batch.prefetch import Slots
from xraydesk.batch.threads import Schedule, Tuner, schedule_candidates, torch_threads
from xraydesk.classifier import Classifier
from xraydesk.errors import Cancelled
from xraydesk.model.probabilities import softmax
from xraydesk.runtime.backend import Backend
from xraydesk.runtime.batch_mode import batch_backend

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class BatchOutputs:
    """One batch's forward pass: what the one verdict (``trust.verdict.decide_all``) needs."""

    probabilities: np.ndarray  # (N, classes) float64
    features: np.ndarray  # (N, D): the pooled input of the head (the OOD score)
    activations: np.ndarray | None  # (N, D, h, w): the last stage (the attention check)


class BatchModel:
    def __init__(self, classifier: Classifier, optimise: bool = True, batch_size: int = 32) -> None:
        self.classifier = classifier
        self.device = classifier.device
        self.batch_size = max(1, batch_size)
        self.private = False
        self._pinned: torch.Tensor | None = None
        self._full_batch_seen = False
        # The classifier's exported runtime (None: it runs on its torch network, which is
        # not even loaded when there is an exported one).
        self._runtime: Backend | None = classifier.runtime
        self.network: nn.Module | None = classifier.network if self._runtime is None else None
        if optimise and self.network is not None:
            try:
                self.network = self._prepared(self.network)
                self.private = True
            except Exception as exc:  # not traceable: run the classifier's own network
                log.info("batch inference without folding (%s: %s)", type(exc).__name__, exc)

    @property
    def backend(self) -> Backend | None:
        """The exported runtime batches run on (None: torch). OpenVINO runs batches in its
        throughput mode where that measured faster (``runtime.batch_mode``): a twin of the
        classifier's backend, compiled at its first use, so a run whose batches all hold
        one image (``xraydesk classify ONE.dcm``) never compiles it."""
        return None if self._runtime is None else batch_backend(self._runtime)

    def _run(self, rows: int) -> Any:
        """What runs a batch of ``rows`` images: one image on the classifier's own backend
        (latency mode gives the same numbers, ``tests/runtime/test_batch_mode.py``)."""
        if self._runtime is None:
            return self.classifier.forward
        return (self._runtime if rows == 1 else batch_backend(self._runtime)).run

    def _prepared(self, network: nn.Module) -> nn.Module:
        import torch

        from xraydesk.model.resnet import ResNet, fold_batch_norms

        with torch.no_grad():
            fused = copy.deepcopy(network).eval()
            if isinstance(fused, ResNet):  # another network is copied as it is
                fused = fold_batch_norms(fused)
        dtype = self.device.autocast_dtype or torch.float32
        return fused.to(
            self.device.device, dtype=dtype, memory_format=self.device.memory_format
        ).eval()

    def probabilities(self, batch: Any) -> np.ndarray:
        """(N, classes) float64 probabilities for preprocessed inputs (N, C, H, W)."""
        return self.probabilities_and_features(batch)[0]

    def probabilities_and_features(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and the pooled features that fed the linear head, from one pass
        (the out-of-distribution score of ``xraydesk.trust`` needs the features)."""
        out = self.outputs(batch, activations=False)
        return out.probabilities, out.features

    def outputs(self, batch: Any, activations: bool = True) -> BatchOutputs:
        """Probabilities, pooled features and (``activations``) the last stage's output
        of one pass: the CAM of the attention check is a weighted sum of the latter, so
        keeping it costs a copy, not a second pass."""
        if self.private:
            logits, features, maps = self._folded_pass(batch, activations)
        else:  # an exported runtime in the batch engine's mode, or the classifier's network
            out = self._run(len(batch))(batch, activations)
            logits, features, maps = out.logits, out.features, out.activations
        return BatchOutputs(softmax(logits, self.classifier.card.temperature), features, maps)

    def _folded_pass(
        self, batch: Any, activations: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Logits, features and (``activations``) the last stage of the private folded
        copy (torch). The last stage is caught entering the pooling, its one consumer."""
        import torch

        from xraydesk.model.network import classifier_head

        assert self.network is not None
        captured: list[torch.Tensor] = []
        stage: list[torch.Tensor] = []
        hooks = [
            classifier_head(self.network).register_forward_pre_hook(
                lambda _m, args: captured.append(args[0])
            )
        ]
        pool = _pooling(self.network) if activations else None
        if pool is not None:
            hooks.append(pool.register_forward_pre_hook(lambda _m, args: stage.append(args[0])))
        dtype = self.device.autocast_dtype or torch.float32
        x = torch.as_tensor(batch).to(self.device.device, non_blocking=True)
        x = x.to(dtype).contiguous(memory_format=self.device.memory_format)
        try:
            with torch.inference_mode():
                logits = self.network(x).float().cpu()
        finally:
            for hook in hooks:
                hook.remove()
        maps = stage[0].float().cpu().contiguous().numpy() if stage else None
        return logits.numpy(), captured[0].float().cpu().numpy(), maps

    def classify(self, tensors: list[Any]) -> np.ndarray:
        """Probabilities for up to ``batch_size`` preprocessed inputs, one row each."""
        return self.classify_with_features(tensors)[0]

    def classify_with_features(self, tensors: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and pooled features for up to ``batch_size`` inputs, one row each."""
        out = self.classify_outputs(tensors, activations=False)
        return out.probabilities, out.features

    def classify_outputs(self, tensors: list[Any], activations: bool = True) -> BatchOutputs:
        """``outputs`` for up to ``batch_size`` preprocessed inputs, one row each."""
        count = len(tensors)
        if self._runtime is None and self._full_batch_seen and count < self.batch_size:
            # torch: keep the one input shape of the run: a new shape costs new kernels and
            # a second set of activation buffers (measured +60 MB for a last batch of 28).
            # Not an exported runtime: OpenVINO keeps a request's buffers sized for the
            # largest batch it ran (``runtime.recheck``), so padding only cost the network
            # up to a whole batch of copies (a folder of 40 ran 64).
            tensors = tensors + tensors[-1:] * (self.batch_size - count)
        out = self.outputs(self._stack(tensors), activations)
        if count == self.batch_size:
            self._full_batch_seen = True
        maps = None if out.activations is None else out.activations[:count]
        return BatchOutputs(out.probabilities[:count], out.features[:count], maps)

    def _stack(self, tensors: list[Any]) -> Any:
        """One input batch (numpy); on CUDA a torch tensor in a reused pinned buffer, so the
        copy to the GPU is asynchronous."""
        if self.device.type != "cuda":
            return np.stack(tensors)
        import torch

        tensors = [torch.as_tensor(t) for t in tensors]
        shape = (self.batch_size, *tensors[0].shape)
        if self._pinned is None or tuple(self._pinned.shape) != shape:
            self._pinned = torch.empty(shape, dtype=tensors[0].dtype, pin_memory=True)
        return torch.stack(tensors, out=self._pinned[: len(tensors)])

    def interrupt_on(self, cancel: threading.Event) -> list[Any]:
        """Let ``cancel`` interrupt a forward pass between layers (a batch of 32 can take
        several seconds on a busy CPU) with ``Cancelled``. Only the calling thread is
        interrupted: the network may be the viewer's own (when it could not be folded).
        Returns the hook handles; the caller removes them."""
        owner = threading.get_ident()
        if self._runtime is not None or self.network is None:
            return []  # an exported graph runs as one call: the batch finishes

        def check(_module: nn.Module, _inputs: object) -> None:
            if cancel.is_set() and threading.get_ident() == owner:
                raise Cancelled("The batch was cancelled.")

        leaves = [m for m in self.network.modules() if next(m.children(), None) is None]
        return [m.register_forward_pre_hook(check) for m in leaves]


def _pooling(network: nn.Module) -> nn.Module | None:
    """The global pooling before the head (None: an architecture without one; its batch
    then gets no attention check rather than a failed run)."""
    try:
        return network.get_submodule("avgpool")
    except AttributeError:
        return None


class CpuShare:
    """The CPU split between the model and the decode threads, chosen per batch.

    On a GPU there is nothing to share: ``run_batch`` only times the work. On a CPU the
    schedule's thread count is set for the calling thread's OpenMP team, the decode slots
    are narrowed to the cores left over (closed while the model runs, when gated), and the
    time from one full batch's end to the next (inference, waiting for decoding, storing
    rows) is recorded for the tuner.
    """

    def __init__(
        self,
        device_type: str,
        cores: int,
        slots: Slots,
        workers: int,
        batch_size: int,
        schedule: Schedule | None = None,
        exported: bool = False,
    ) -> None:
        self.cores, self.slots, self.workers = cores, slots, workers
        self.batch_size = max(1, batch_size)
        self.tuner: Tuner[Schedule] | None = None
        if device_type == "cpu":
            candidates = [schedule] if schedule else schedule_candidates(cores, exported)
            self.tuner = Tuner(candidates)
        self._threads_before = torch_threads()
        self._last_batch_end: float | None = None

    def run_batch(self, count: int, work: Callable[[], T]) -> tuple[T, float]:
        """``work()`` under this batch's schedule; returns its result and its seconds."""
        schedule = self.tuner.choose() if self.tuner is not None else None
        if schedule is not None:
            if schedule.threads != torch_threads():
                torch_threads(schedule.threads)  # this thread's OpenMP team only
            free = max(1, self.cores - schedule.threads)
            self.slots.set_limit(0 if schedule.gated else free)
        start = time.perf_counter()
        try:
            result = work()
        finally:
            if schedule is not None and schedule.gated:
                self.slots.set_limit(self.workers)  # decode in the gap before the next batch
        end = time.perf_counter()
        last, self._last_batch_end = self._last_batch_end, end
        full = count == self.batch_size
        if full and last is not None and self.tuner is not None and schedule is not None:
            self.tuner.record(schedule, (end - last) / count)
        return result, end - start

    def restore(self) -> None:
        """Give the calling thread back the thread count it had before the run."""
        if torch_threads() != self._threads_before:
            torch_threads(self._threads_before)

    @property
    def best(self) -> str | None:
        """The schedule measured best, in words (None on a GPU)."""
        return str(self.tuner.best) if self.tuner is not None else None
