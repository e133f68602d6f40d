"""The legend strip under an exported heat-map image: the colour scale (low to high), what
the map supports, the model (name and version) and "Not for diagnosis".

A heat-map PNG leaves the app (a batch run's "Grad-CAM images", File > Export image);
without its legend it is a coloured film that nobody can read back: which class, which
model, which way the colours run, and that it is no diagnosis. Drawn with Pillow (no Qt
here), so the batch engine and the viewer's export write the same strip.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xraydesk.explain.overlay import colormap_lut

NOT_FOR_DIAGNOSIS = "Not for diagnosis"
SCALE_LOW, SCALE_HIGH = "low", "high"
_BACKGROUND, _TEXT, _ALERT = (16, 18, 22), (235, 237, 240), (255, 190, 90)


def legend_lines(explained_name: str | None, model: str) -> tuple[str, ...]:
    """The legend's lines: what the map supports, the model, "Not for diagnosis"."""
    first = f"Heat map: what supports {explained_name}" if explained_name else "No heat map shown"
    return (first, f"Model: {model}" if model else "Model: none", NOT_FOR_DIAGNOSIS)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fitting_font(
    lines: tuple[str, ...], width: float, largest: int
) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, int]:
    """The largest font (at most ``largest`` pixels, at least 8) whose widest line fits
    ``width``: a narrow image still gets the whole legend."""
    for size in range(largest, 7, -1):
        font = _font(size)
        if max(font.getlength(line) for line in lines) <= width:
            return font, size
    return _font(8), 8


def with_legend(rgb: np.ndarray, explained_name: str | None, model: str) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with the legend strip below it; the colour scale is drawn
    only when a heat map is on the image (``explained_name`` given)."""
    height, width = rgb.shape[:2]
    lines = legend_lines(explained_name, model)
    margin = max(4, width // 60)
    font, unit = _fitting_font(lines, width - 2 * margin, max(12, min(width, 2400) // 45))
    line_h = int(unit * 1.35)
    scale_h = int(unit * 2.4) if explained_name else 0
    strip = margin * 2 + scale_h + line_h * len(lines)
    out = Image.new("RGB", (width, height + strip), _BACKGROUND)
    out.paste(Image.fromarray(np.ascontiguousarray(rgb[..., :3])), (0, 0))
    draw = ImageDraw.Draw(out)
    top = height + margin
    if explained_name:
        bar_w = int(min(width - 2 * margin, unit * 16))
        bar_h = max(4, int(unit * 0.9))
        ramp = colormap_lut()[np.linspace(0, 255, max(bar_w, 1)).astype(np.uint8)]
        bar = np.repeat(ramp[None, :, :], bar_h, axis=0)
        out.paste(Image.fromarray(bar), (margin, top))
        draw.rectangle((margin, top, margin + bar_w - 1, top + bar_h - 1), outline=_TEXT)
        small = _font(max(8, int(unit * 0.8)))
        words_y = top + bar_h + 2
        draw.text((margin, words_y), SCALE_LOW, fill=_TEXT, font=small)
        high_w = small.getlength(SCALE_HIGH)
        draw.text((margin + bar_w - high_w, words_y), SCALE_HIGH, fill=_TEXT, font=small)
        top += scale_h
    for k, line in enumerate(lines):
        last = k == len(lines) - 1  # "Not for diagnosis" stands out
        draw.text((margin, top + k * line_h), line, fill=_ALERT if last else _TEXT, font=font)
    return np.asarray(out)
