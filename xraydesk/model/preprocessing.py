"""Preprocessing: defined once, saved in every model card, used by inference, batch and training.

The pipeline is: the radiograph rendered with its own default window (so MONOCHROME1 and
16-bit files arrive the right way up, in [0, 1]) -> resize to a square -> optional
histogram equalisation -> normalisation -> channel count. Training inserts its
augmentation between the unit image and ``finish`` and nowhere else, so a model always
sees at run time what it saw when it learned.

torch is imported where a tensor is made: model cards hold a ``Preprocessing``, and
reading a card (``xraydesk models``, the app's model menu) must not import torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
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
    def __call__(self, xray: XRay) -> torch.Tensor:
        """A radiograph to the model's input tensor, shape (channels, size, size)."""
        return self.from_unit(xray.render())

    def from_unit(self, unit: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A display image in [0, 1] (H, W) to the model's input tensor."""
        return self.finish(self.resize_unit(unit))

    def resize_unit(self, unit: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Resize a [0, 1] image to (1, size, size) float32 with anti-aliasing."""
        import torch
        import torch.nn.functional as F

        image = torch.as_tensor(unit, dtype=torch.float32)
        if image.ndim != 2:
            raise ValueError(f"expected a 2-D image, got shape {tuple(image.shape)}")
        if self.resize == "letterbox":
            image = _pad_to_square(image)
        resized = F.interpolate(
            image[None, None],
            size=(self.size, self.size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        return resized[0].clamp_(0.0, 1.0)

    def finish(self, resized: torch.Tensor) -> torch.Tensor:
        """Equalise, normalise and set the channel count of a (1, size, size) [0, 1] tensor."""
        out = equalize_histogram(resized) if self.equalize else resized
        out = (out - self.mean) / self.std
        if self.channels != 1:
            out = out.expand(self.channels, -1, -1).contiguous()
        return out

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


def _pad_to_square(image: torch.Tensor) -> torch.Tensor:
    height, width = image.shape
    side = max(height, width)
    if height == width:
        return image
    out = image.new_zeros((side, side))
    top = (side - height) // 2
    left = (side - width) // 2
    out[top : top + height, left : left + width] = image
    return out


def equalize_histogram(image: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Histogram-equalise a [0, 1] tensor of any shape (one histogram over all of it)."""
    import torch

    flat = image.reshape(-1)
    index = (flat * (bins - 1)).round_().long().clamp_(0, bins - 1)
    hist = torch.bincount(index, minlength=bins).to(torch.float32)
    cdf = hist.cumsum(0)
    first = cdf[hist > 0][0]
    total = cdf[-1]
    if total <= first:  # a flat image stays as it is
        return image.clone()
    lut = ((cdf - first) / (total - first)).clamp_(0.0, 1.0)
    return lut[index].reshape(image.shape)
