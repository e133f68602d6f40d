"""Training augmentation for radiographs.

Two aims. Geometry a real exposure varies in: small rotations, zoom in or out, shifts;
never a vertical flip (no chest film is taken upside down) and no horizontal flip by
default (the heart's side is anatomy, not noise). And, above all, scanner and site
*style*: contrast, gamma, blur, noise, JPEG quality, crops and borders. Pools come from
different hospitals; a model that can tell hospitals apart by their grey levels or
compression will "detect" disease by recognising where the image came from. Randomising
style takes that shortcut away.

It works on the resized unit image (1, S, S) in [0, 1], between
``Preprocessing.resize_unit`` and ``Preprocessing.finish``, so whatever the model sees at
run time (equalisation, normalisation) is exactly what it saw in training. Every draw
comes from a numpy Generator seeded by (seed, epoch, sample), so a run (and a resumed
run) is reproducible whichever thread loads the image.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # torch is imported where augmentation runs: the light build has none
    import torch


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 7.0  # uniform in +-rotate_deg
    zoom: tuple[float, float] = (0.9, 1.2)  # >1 crops in, <1 shrinks the image inside a border
    shift: float = 0.06  # fraction of the side, each axis
    brightness: float = 0.08  # additive, +-
    contrast: float = 0.25  # multiplicative about the mean, 1 +- contrast
    gamma: tuple[float, float] = (0.7, 1.45)  # log-uniform
    blur_p: float = 0.25
    blur_sigma: tuple[float, float] = (0.3, 1.3)  # pixels at the model's size
    noise_p: float = 0.3
    noise_std: tuple[float, float] = (0.005, 0.03)
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 92)
    border_p: float = 0.25  # black or white bars at the edges (collimation, scanned film)
    border_max: float = 0.08  # widest bar, as a fraction of the side
    hflip_p: float = 0.0
    # Against the source shortcut; off by default. Side markers, burnt-in text
    # and corner labels differ by hospital: erasing them, or painting random ones, makes
    # them useless for telling pools (hence classes) apart.
    corner_erase_p: float = 0.0  # fill 1-4 corner squares (mean grey, black, white, noise)
    marker_p: float = 0.0  # paint 1-3 random marker/text blocks near corners and edges
    corner_size: float = 0.18  # corner square side, fraction of the image side
    thorax_crop_p: float = 0.0  # crop to the central thorax box and resize back
    thorax_box: tuple[float, float, float, float] = (0.06, 0.94, 0.08, 0.92)  # t, b, l, r

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown augmentation setting {key!r}")
            values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


NO_AUGMENTATION = AugmentConfig(
    rotate_deg=0.0,
    zoom=(1.0, 1.0),
    shift=0.0,
    brightness=0.0,
    contrast=0.0,
    gamma=(1.0, 1.0),
    blur_p=0.0,
    noise_p=0.0,
    jpeg_p=0.0,
    border_p=0.0,
)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample in one epoch: independent of batch and thread order."""
    return np.random.default_rng([seed, epoch, index])


def augment(image: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Augment a (1, S, S) [0, 1] image; returns a new (1, S, S) [0, 1] tensor."""
    import torch

    if cfg.thorax_crop_p and rng.random() < cfg.thorax_crop_p:
        image = _thorax_crop(image, cfg.thorax_box)
    out = _geometry(image, rng, cfg)
    out = _tone(out, rng, cfg)
    if cfg.blur_p and rng.random() < cfg.blur_p:
        out = _gaussian_blur(out, float(rng.uniform(*cfg.blur_sigma)))
    if cfg.noise_p and rng.random() < cfg.noise_p:
        std = float(rng.uniform(*cfg.noise_std))
        noise = rng.standard_normal(out.shape, dtype=np.float32) * std
        out = out + torch.from_numpy(noise)
    out = out.clamp_(0.0, 1.0)
    if cfg.jpeg_p and rng.random() < cfg.jpeg_p:
        out = _jpeg(out, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    if cfg.border_p and rng.random() < cfg.border_p:
        out = _borders(out, rng, cfg.border_max)
    if cfg.corner_erase_p and rng.random() < cfg.corner_erase_p:
        out = _erase_corners(out, rng, cfg.corner_size)
    if cfg.marker_p and rng.random() < cfg.marker_p:
        out = _paint_markers(out, rng, cfg.corner_size)
    return out


def _geometry(image: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    angle = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)) if cfg.rotate_deg else 0.0
    zoom = float(np.exp(rng.uniform(np.log(cfg.zoom[0]), np.log(cfg.zoom[1]))))
    tx, ty = (rng.uniform(-cfg.shift, cfg.shift, size=2) * 2.0) if cfg.shift else (0.0, 0.0)
    flip = -1.0 if (cfg.hflip_p and rng.random() < cfg.hflip_p) else 1.0
    if angle == 0.0 and zoom == 1.0 and tx == 0.0 and ty == 0.0 and flip == 1.0:
        return image.clone()
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    # affine_grid maps output coordinates to input ones: dividing by zoom > 1 crops in.
    theta = torch.tensor([[flip * cos, -sin, tx], [flip * sin, cos, ty]], dtype=torch.float32)
    grid = F.affine_grid(theta[None], [1, *image.shape], align_corners=False)
    return F.grid_sample(
        image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[0]


def _tone(image: torch.Tensor, rng: np.random.Generator, cfg: AugmentConfig) -> torch.Tensor:
    out = image
    if cfg.contrast:
        factor = float(rng.uniform(1.0 - cfg.contrast, 1.0 + cfg.contrast))
        mean = out.mean()
        out = (out - mean) * factor + mean
    if cfg.brightness:
        out = out + float(rng.uniform(-cfg.brightness, cfg.brightness))
    out = out.clamp(0.0, 1.0)
    if cfg.gamma != (1.0, 1.0):
        gamma = float(np.exp(rng.uniform(np.log(cfg.gamma[0]), np.log(cfg.gamma[1]))))
        out = out.pow(gamma)
    return out


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    out = F.conv2d(out, kernel.view(1, 1, -1, 1))
    return out[0]


def _jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Re-encode as JPEG: compression artefacts differ between sites and exports."""
    import torch

    gray = (image[0].numpy() * 255.0 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    decoded = np.asarray(Image.open(buffer).convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(decoded)[None]


def _borders(image: torch.Tensor, rng: np.random.Generator, widest: float) -> torch.Tensor:
    out = image.clone()
    size_h, size_w = out.shape[-2:]
    value = 0.0 if rng.random() < 0.7 else 1.0  # mostly black (padding), sometimes white (film)
    for side in range(4):
        if rng.random() < 0.5:
            continue
        width = int(rng.uniform(0.0, widest) * (size_h if side < 2 else size_w))
        if width == 0:
            continue
        if side == 0:
            out[:, :width, :] = value
        elif side == 1:
            out[:, size_h - width :, :] = value
        elif side == 2:
            out[:, :, :width] = value
        else:
            out[:, :, size_w - width :] = value
    return out


def _thorax_crop(image: torch.Tensor, box: tuple[float, float, float, float]) -> torch.Tensor:
    """Crop to the thorax box (fractions of the side) and resize back to the full size."""
    import torch.nn.functional as F

    size_h, size_w = image.shape[-2:]
    top, bottom, left, right = box
    crop = image[
        :, int(top * size_h) : int(bottom * size_h), int(left * size_w) : int(right * size_w)
    ]
    return F.interpolate(crop[None], size=(size_h, size_w), mode="bilinear", align_corners=False)[
        0
    ].clamp_(0.0, 1.0)


def _erase_corners(image: torch.Tensor, rng: np.random.Generator, side: float) -> torch.Tensor:
    """Fill one to four corner squares, each with the mean grey, black, white or noise."""
    import torch

    out = image.clone()
    size_h, size_w = out.shape[-2:]
    chosen = [k for k in range(4) if rng.random() < 0.5] or [int(rng.integers(4))]
    for corner in chosen:
        h = max(1, int(rng.uniform(0.5, 1.0) * side * size_h))
        w = max(1, int(rng.uniform(0.5, 1.0) * side * size_w))
        rows = slice(0, h) if corner < 2 else slice(size_h - h, size_h)
        cols = slice(0, w) if corner % 2 == 0 else slice(size_w - w, size_w)
        kind = int(rng.integers(4))
        if kind == 3:
            noise = rng.uniform(0.0, 1.0, size=(h, w)).astype(np.float32)
            out[0, rows, cols] = torch.from_numpy(noise)
        else:
            out[0, rows, cols] = (float(image.mean()), 0.0, 1.0)[kind]
    return out


def _paint_markers(image: torch.Tensor, rng: np.random.Generator, side: float) -> torch.Tensor:
    """Paint 1-3 letter-sized blocks (bright, sometimes dark) where markers and text sit:
    within a corner square or along an edge, so a real marker tells nothing."""

    out = image.clone()
    size_h, size_w = out.shape[-2:]
    for _ in range(int(rng.integers(1, 4))):
        h = max(1, int(rng.uniform(0.02, 0.06) * size_h))
        w = max(1, int(rng.uniform(0.02, 0.12) * size_w))
        if rng.random() < 0.7:  # in a corner square
            top = rng.uniform(0.0, side) if rng.random() < 0.5 else rng.uniform(1 - side, 1.0)
            left = rng.uniform(0.0, side) if rng.random() < 0.5 else rng.uniform(1 - side, 1.0)
        else:  # anywhere along the top or bottom edge
            top = rng.uniform(0.0, 0.08) if rng.random() < 0.5 else rng.uniform(0.92, 1.0)
            left = rng.uniform(0.0, 1.0)
        r0 = min(int(top * size_h), size_h - h)
        c0 = min(int(left * size_w), size_w - w)
        value = float(rng.uniform(0.85, 1.0)) if rng.random() < 0.8 else float(rng.uniform(0, 0.1))
        out[0, r0 : r0 + h, c0 : c0 + w] = value
    return out
