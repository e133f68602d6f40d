"""Forward passes over many samples: features for quick mode, logits for evaluation.

``run_forward`` takes any function from an input batch to an output array: a torch module
(``torch_forward``) or an exported runtime's pass (quick mode in the light build, which
has no torch); loading, failures, progress and cancelling are the same for both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xraydesk.model.device import DeviceChoice
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.trainer.batches import batch_iterator
from xraydesk.trainer.dataset import Sample
from xraydesk.trainer.progress import Reporter

if TYPE_CHECKING:
    from torch import nn

Forward = Callable[[Any], np.ndarray]  # an input batch (N, C, S, S) -> outputs (N, D)


def torch_forward(module: nn.Module, device: DeviceChoice) -> Forward:
    """``module`` in inference mode on ``device``, in its precision, as a ``Forward``."""
    import torch

    module.eval()

    def forward(inputs: Any) -> np.ndarray:
        x = torch.as_tensor(inputs).to(device.device, non_blocking=True)
        x = x.contiguous(memory_format=device.memory_format)
        with torch.inference_mode(), device.autocast():
            return module(x).float().cpu().numpy()

    return forward


def run_module(
    module: nn.Module,
    samples: Sequence[Sample],
    indices: Sequence[int],
    prep: Preprocessing,
    device: DeviceChoice,
    batch_size: int,
    reporter: Reporter | None = None,
    on_batch: Callable[[int, int, np.ndarray, list[int], list[bool]], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``run_forward`` of a torch module on ``device``."""
    forward = torch_forward(module, device)
    return run_forward(forward, samples, indices, prep, batch_size, reporter, on_batch)


def run_forward(
    forward: Forward,
    samples: Sequence[Sample],
    indices: Sequence[int],
    prep: Preprocessing,
    batch_size: int,
    reporter: Reporter | None = None,
    on_batch: Callable[[int, int, np.ndarray, list[int], list[bool]], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Outputs (len(indices), D) float32 and a mask of the images that loaded.

    Images that failed to load get NaN rows and False in the mask. ``on_batch(done,
    total, outputs, sample_indices, ok)`` sees each batch as it is computed (quick mode
    caches features from there, so a killed extraction keeps what it did). Checks for
    cancellation between batches.
    """
    indices = list(indices)
    # padded to one shape, a batch far above the images (--batch 100000000) was a forward
    # pass over that many copies of the last image: a run that never ended
    batch_size = max(1, min(batch_size, len(indices)))
    batches = [indices[k : k + batch_size] for k in range(0, len(indices), batch_size)]
    outputs: list[np.ndarray | None] = []
    mask: list[bool] = []
    done = 0
    for batch in batch_iterator(samples, batches, prep, pad_to=batch_size):
        if reporter is not None:
            reporter.check_cancel()
        n = len(batch.ok)
        ok = np.asarray(batch.ok, dtype=bool)
        out = None
        if batch.indices:
            out = np.asarray(forward(batch.inputs))[:n].astype(np.float32, copy=True)
            out[~ok] = np.nan
        outputs.append(out)
        mask.extend(batch.ok)
        done += n
        if on_batch is not None and out is not None:
            on_batch(done, len(indices), out, indices[done - n : done], list(batch.ok))
    width = next((o.shape[1] for o in outputs if o is not None), 0)
    rows = [
        o if o is not None else np.full((len(b), width), np.nan, dtype=np.float32)
        for o, b in zip(outputs, batches, strict=True)
    ]
    if not rows:
        return np.zeros((0, width), dtype=np.float32), np.zeros(0, dtype=bool)
    return np.concatenate(rows), np.asarray(mask, dtype=bool)
