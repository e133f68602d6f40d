"""Shortcut audit: does a model look at the lungs, or at borders, corners and burnt-in text?

A model trained on pools from different hospitals can learn where an image comes from
(side markers, text, collimation borders) instead of the disease. Two measures, on the
test split, make that visible:

* CAM mass: the share of the class activation map of the predicted class (head weights
  times the last stage's activations, ReLU, upsampled to the input) that falls inside
  the central lung box, the corner squares, the border band and the rest. A model that
  reads the lungs puts most of its mass in the lung box, well above the box's area.
* Masked accuracy: accuracy again with the border band and the corner squares filled
  with the mean of the rest of the model input. The fill is applied after the
  preprocessing (equalisation, normalisation), so the lung pixels the model sees are
  exactly those of the plain input; only what lies in the hidden regions is gone. A
  model that loses much accuracy when markers and borders are hidden was using them.

Regions are fractions of the model's square input (``AuditRegions``), so they mean the
same at every size. The CAM is as coarse as the last stage: 4 x 4 cells at 128 px, 7 x 7
at 224 px; read small differences between regions with that in mind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xraydesk.errors import ImageLoadError
from xraydesk.imaging import load_xray
from xraydesk.model.device import DeviceChoice
from xraydesk.model.network import cam_target_layer, classifier_head
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.trainer.batches import Batch, prefetch
from xraydesk.trainer.dataset import Sample

REGION_NAMES = ("lung", "corners", "border", "other")


@dataclass(frozen=True)
class AuditRegions:
    """Where the lungs and the likely shortcuts lie, as fractions of the input side.

    ``lung``: (top, bottom, left, right) of the central box that holds both lung fields
    on a PA or AP film. ``corner``: side of the square at each corner, where side markers
    and burnt-in text usually sit. ``border``: width of the band along each edge
    (collimation, film edges, padding); the corners are not counted in it twice.
    """

    lung: tuple[float, float, float, float] = (0.12, 0.88, 0.15, 0.85)
    corner: float = 0.18
    border: float = 0.06

    def masks(self, size: int) -> dict[str, torch.Tensor]:
        """Disjoint boolean (size, size) masks for lung, corners, border and other."""
        pos = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        rows, cols = pos[:, None], pos[None, :]
        top, bottom, left, right = self.lung
        lung = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
        near_r = (rows < self.corner) | (rows >= 1 - self.corner)
        near_c = (cols < self.corner) | (cols >= 1 - self.corner)
        corners = near_r & near_c
        edge_r = (rows < self.border) | (rows >= 1 - self.border)
        edge_c = (cols < self.border) | (cols >= 1 - self.border)
        border = (edge_r | edge_c) & ~corners
        lung = lung & ~corners & ~border
        other = ~(lung | corners | border)
        return {"lung": lung, "corners": corners, "border": border, "other": other}

    def hidden(self, size: int) -> torch.Tensor:
        """What masked accuracy hides: the corner squares and the border band."""
        m = self.masks(size)
        return m["corners"] | m["border"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mask_shortcuts(inputs: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """A (C, S, S) model input with the hidden pixels set to the mean of the others."""
    out = inputs.clone()
    for channel in out:
        channel[hidden] = channel[~hidden].mean() if (~hidden).any() else channel.mean()
    return out


def class_activation_maps(
    network: nn.Module, x: torch.Tensor, device: DeviceChoice
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, K) and the predicted class's CAM (N, h, w), ReLU applied, in one forward.

    For a ResNet (global average pool, then the linear head) the CAM is exact: the head's
    weights for a class times the last stage's activations, summed over channels.
    """
    captured: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: object, output: torch.Tensor) -> None:
        captured.append(output)

    hook = cam_target_layer(network).register_forward_hook(keep)
    try:
        with torch.inference_mode(), device.autocast():
            logits = network(x).float()
    finally:
        hook.remove()
    features = captured[0].float()  # (N, C, h, w)
    weight = classifier_head(network).weight.detach().float()  # (K, C)
    predicted = logits.argmax(dim=1)
    cams = torch.einsum("nchw,nc->nhw", features, weight[predicted])
    return logits, cams.clamp(min=0)


def region_shares(cams: torch.Tensor, masks: dict[str, torch.Tensor]) -> np.ndarray:
    """(N, len(REGION_NAMES)) share of each CAM's mass per region (rows sum to 1).

    A CAM with no positive mass (nothing speaks for the class) gets the regions' areas.
    """
    size = next(iter(masks.values())).shape[0]
    up = F.interpolate(cams[:, None], size=(size, size), mode="bilinear", align_corners=False)
    up = up[:, 0].clamp(min=0).cpu()
    total = up.sum(dim=(1, 2))
    area = torch.stack([m.float().mean() for m in masks.values()])
    shares = torch.stack([(up * m).sum(dim=(1, 2)) for m in masks.values()], dim=1)
    shares = torch.where(
        total[:, None] > 0, shares / total.clamp(min=1e-12)[:, None], area[None, :]
    )
    return shares.numpy().astype(np.float64)


def audit_shortcuts(
    network: nn.Module,
    prep: Preprocessing,
    samples: Sequence[Sample],
    indices: Sequence[int],
    class_ids: Sequence[str],
    device: DeviceChoice,
    batch_size: int = 32,
    regions: AuditRegions | None = None,
) -> dict[str, Any]:
    """CAM mass per region and accuracy with borders and corners masked, JSON-ready.

    Images that fail to load are left out and counted. Per-pool figures are added when
    the samples come from more than one pool.
    """
    regions = regions or AuditRegions()
    masks = regions.masks(prep.size)
    hidden = masks["corners"] | masks["border"]
    index = {cid: k for k, cid in enumerate(class_ids)}
    indices = list(indices)
    batches = [indices[k : k + batch_size] for k in range(0, len(indices), batch_size)]
    network = network.to(device.device, memory_format=device.memory_format).eval()

    def make(k: int) -> tuple[Batch, torch.Tensor]:
        plain, masked, kept = [], [], []
        for i in batches[k]:
            try:
                unit = torch.from_numpy(prep.resize_unit(load_xray(samples[i].path).render()))
            except ImageLoadError:
                continue
            plain.append(prep.finish(unit))
            masked.append(mask_shortcuts(plain[-1], hidden))
            kept.append(i)
        if not kept:
            return Batch(indices=[], inputs=torch.empty(0)), torch.empty(0)
        return Batch(indices=kept, inputs=torch.stack(plain)), torch.stack(masked)

    y, pred, pred_masked, shares, pools = [], [], [], [], []
    for batch, masked in prefetch(lambda k: make(k), len(batches)):  # type: ignore[arg-type]
        if not batch.indices:
            continue
        fmt = device.memory_format
        x = batch.inputs.to(device.device).contiguous(memory_format=fmt)
        logits, cams = class_activation_maps(network, x, device)
        with torch.inference_mode(), device.autocast():
            masked_logits = network(masked.to(device.device).contiguous(memory_format=fmt))
        y.extend(index[samples[i].label] for i in batch.indices)
        pools.extend(samples[i].source for i in batch.indices)
        pred.extend(logits.argmax(dim=1).cpu().tolist())
        pred_masked.extend(masked_logits.float().argmax(dim=1).cpu().tolist())
        shares.append(region_shares(cams, masks))
    result = _summary(
        np.asarray(y),
        np.asarray(pred),
        np.asarray(pred_masked),
        np.concatenate(shares) if shares else np.zeros((0, len(REGION_NAMES))),
        masks,
    )
    result["regions"] = regions.to_dict()
    result["size"] = prep.size
    result["unreadable"] = len(indices) - result["n"]
    pool_names = np.asarray(pools)
    if len(set(pools)) > 1:
        all_shares = np.concatenate(shares)
        result["per_source"] = {
            pool: _summary(
                np.asarray(y)[pool_names == pool],
                np.asarray(pred)[pool_names == pool],
                np.asarray(pred_masked)[pool_names == pool],
                all_shares[pool_names == pool],
                masks,
                with_area=False,
            )
            for pool in sorted(set(pools))
        }
    return result


def _summary(
    y: np.ndarray,
    pred: np.ndarray,
    pred_masked: np.ndarray,
    shares: np.ndarray,
    masks: dict[str, torch.Tensor],
    with_area: bool = True,
) -> dict[str, Any]:
    n = len(y)
    acc = float((pred == y).mean()) if n else None
    acc_masked = float((pred_masked == y).mean()) if n else None
    out: dict[str, Any] = {
        "n": n,
        "cam_share": {
            name: float(shares[:, k].mean()) if n else None for k, name in enumerate(REGION_NAMES)
        },
        "accuracy": acc,
        "accuracy_masked": acc_masked,
        "accuracy_drop": None if acc is None else acc - acc_masked,  # type: ignore[operator]
        "changed": float((pred != pred_masked).mean()) if n else None,
    }
    if with_area:
        out["area"] = {name: float(m.float().mean()) for name, m in masks.items()}
    return out
