"""Preprocessing: defined once, saved in every model card, used by inference, batch and training.

The pipeline is: the radiograph rendered with its own default window (so MONOCHROME1 and
16-bit files arrive the right way up, in [0, 1]) -> resize to a square -> optional
histogram equalisation -> normalisation -> channel count. Training inserts its
augmentation between the unit image and ``finish`` and nowhere else, so a model always
sees at run time what it saw when it learned.

It is numpy (``imaging.resample`` resizes as torch's anti-aliased bilinear does): the
light build has no torch, and reading a card (``xraydesk models``, the app's model menu)
must not import it. Training hands ``finish`` the torch tensors its augmentation made and
gets torch tensors back; everything else works in numpy arrays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xraydesk.imaging.resample import resize
from xraydesk.optional import float32_array

if TYPE_CHECKING:
    import torch

    from xraydesk.imaging.xray import XRay

ResizePolicy = Literal["stretch", "letterbox"]


@dataclass(frozen=True)
class Preprocessing:
    size: int = 224
    resize: ResizePolicy = "stretch"  # "letterbox" keeps the aspect ratio and pads with black
    equalize: bool = False  # histogram equalisation after resizing: removes scanner contrast style
    mean: float = 0.5
    std: float = 0.25
    channels: int = 1

    # -- the pipeline ---------------------------------------------------------------------
    def __call__(self, xray: XRay) -> np.ndarray:
        """A radiograph to the model's input, float32 (channels, size, size)."""
        return self.from_unit(xray.render())

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """A display image in [0, 1] (H, W) to the model's input."""
        return self.finish(self.resize_unit(unit))

    def resize_unit(self, unit: np.ndarray | torch.Tensor) -> np.ndarray:
        """Resize a [0, 1] image to (1, size, size) float32 with anti-aliasing."""
        image = float32_array(unit)
        if image.ndim != 2:
            raise ValueError(f"expected a 2-D image, got shape {tuple(image.shape)}")
        if self.resize == "letterbox":
            image = _pad_to_square(image)
        resized = resize(image, self.size, self.size)
        return np.clip(resized, 0.0, 1.0, out=resized)[None]

    def finish(self, resized: Any) -> Any:
        """Equalise, normalise and set the channel count of a (1, size, size) [0, 1] image.

        A numpy array gives a numpy array; a torch tensor (training's augmented images)
        gives a torch tensor."""
        if not isinstance(resized, np.ndarray):
            import torch

            return torch.from_numpy(self.finish(float32_array(resized)))
        table = _equalization(resized) if self.equalize else None
        if table is not None:  # normalised in the 256-entry table, then one gather
            index, lut = table
            lut = (lut - np.float32(self.mean)) / np.float32(self.std)
            out = np.take(lut, index, mode="wrap").reshape(resized.shape)  # indexes in range
        else:  # not equalised, or a flat image, which equalisation leaves as it is
            out = resized.astype(np.float32)
            out = (out - np.float32(self.mean)) / np.float32(self.std)
        if self.channels != 1:
            out = np.repeat(out, self.channels, axis=0)
        return np.ascontiguousarray(out, dtype=np.float32)

    def content_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Where the source image lies inside the model input: (top, left, bottom, right).

        Grad-CAM uses it to map the heat map back onto the source pixels.
        """
        if self.resize != "letterbox" or height == width:
            return 0, 0, self.size, self.size
        side = max(height, width)
        top = (side - height) // 2
        left = (side - width) // 2
        scale = self.size / side
        return (
            round(top * scale),
            round(left * scale),
            round((top + height) * scale),
            round((left + width) * scale),
        )

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """Read saved settings, refusing any value that would make the input wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"preprocessing must be an object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown preprocessing settings: {sorted(unknown)}")
        prep = cls(**data)
        if prep.resize not in ("stretch", "letterbox"):
            raise ValueError(f"unknown resize policy {prep.resize!r}")
        numbers_ok = (
            _is_int(prep.size)
            and 32 <= prep.size <= MAX_INPUT_SIZE
            and _is_int(prep.channels)
            and prep.channels in (1, 3)
            and isinstance(prep.equalize, bool)
            and _is_finite(prep.mean)
            and _is_finite(prep.std)
            and prep.std > 0
        )
        if not numbers_ok:
            raise ValueError(f"invalid preprocessing {data}")
        return prep


MAX_INPUT_SIZE = 2048  # a ResNet input larger than this is not one we trained


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pad_to_square(image: np.ndarray) -> np.ndarray:
    height, width = image.shape
    side = max(height, width)
    if height == width:
        return image
    out = np.zeros((side, side), dtype=np.float32)
    top = (side - height) // 2
    left = (side - width) // 2
    out[top : top + height, left : left + width] = image
    return out


def equalize_histogram(image: Any, bins: int = 256) -> Any:
    """Histogram-equalise a [0, 1] image of any shape (one histogram over all of it);
    numpy in, numpy out (a torch tensor in, a torch tensor out)."""
    if not isinstance(image, np.ndarray):
        import torch

        return torch.from_numpy(equalize_histogram(float32_array(image), bins))
    table = _equalization(image, bins)
    if table is None:  # a flat image stays as it is
        return image.astype(np.float32, copy=True)
    index, lut = table
    return np.take(lut, index, mode="wrap").reshape(image.shape)  # the indexes are in range


def _equalization(image: np.ndarray, bins: int = 256) -> tuple[np.ndarray, np.ndarray] | None:
    """Each pixel's bin (flat, intp) and the bins' equalised values (float32), or None for
    a flat image. The model input (``Preprocessing.finish``) normalises the table, not the
    image: the same operations on the same values, 256 of them instead of every pixel."""
    scaled = image.reshape(-1).astype(np.float32)
    scaled *= np.float32(bins - 1)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, bins - 1, out=scaled)
    index = scaled.astype(np.intp)
    hist = np.bincount(index, minlength=bins).astype(np.float32)
    cdf = hist.cumsum(dtype=np.float32)
    first = cdf[hist > 0][0]
    total = cdf[-1]
    if total <= first:
        return None
    lut = np.clip((cdf - first) / (total - first), 0.0, 1.0).astype(np.float32)
    return index, lut
