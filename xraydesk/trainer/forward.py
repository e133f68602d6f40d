"""Forward passes over many samples: features for quick mode, logits for evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from xraydesk.model.device import DeviceChoice
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.trainer.batches import batch_iterator
from xraydesk.trainer.dataset import Sample
from xraydesk.trainer.progress import Reporter


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
    """Outputs (len(indices), D) float32 and a mask of the images that loaded.

    Images that failed to load get NaN rows and False in the mask. ``on_batch(done,
    total, outputs, sample_indices, ok)`` sees each batch as it is computed (quick mode
    caches features from there, so a killed extraction keeps what it did). Checks for
    cancellation between batches.
    """
    indices = list(indices)
    batches = [indices[k : k + batch_size] for k in range(0, len(indices), batch_size)]
    module.eval()
    fmt = device.memory_format
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
            x = batch.inputs.to(device.device, non_blocking=True).contiguous(memory_format=fmt)
            with torch.inference_mode(), device.autocast():
                y = module(x)
            out = y.float().cpu().numpy()[:n].astype(np.float32, copy=True)
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
