"""Display windows for chest radiographs: presets and the right-drag gesture (no Qt here).

CR and DX pixel values are not Hounsfield units. Their scale depends on the detector,
the exposure and the vendor's processing, and many files (PNG exports, 8-bit DICOM)
are already processed. Fixed CT-style numbers such as "lung W 1500 L -600" would
therefore mean nothing. The chest presets are defined on the image's own value
distribution instead, in *display* order (dark to bright as shown on screen, so
MONOCHROME1 images, whose high values are shown dark, get the mirror-image
percentiles):

- **Lung**: from the 1st to the 65th display percentile. The lung fields are the
  darker half of a chest film; giving that half the whole grey scale brings out
  vessels, interstitial lines and small opacities, while the heart and bones clip
  to white.
- **Mediastinum**: from the 35th to the 99.7th display percentile. The bright half
  (heart, mediastinum, spine, retrocardiac region and diaphragm) gets the grey scale
  so lines and tubes can be followed through dense areas; the lungs clip to black.

Percentiles rather than the minimum and maximum keep labels, burned-in text and
collimation borders from stretching the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xraydesk.imaging.xray import Window, XRay

PRESET_FILE = "From file"
PRESET_FULL = "Full range"
PRESET_LUNG = "Lung"
PRESET_MEDIASTINUM = "Mediastinum"
PRESET_NAMES = (PRESET_FILE, PRESET_FULL, PRESET_LUNG, PRESET_MEDIASTINUM)

# (low, high) display percentiles of the chest presets, see the module docstring
_CHEST_PERCENTILES = {PRESET_LUNG: (1.0, 65.0), PRESET_MEDIASTINUM: (35.0, 99.7)}
_SAMPLE_PIXELS = 512 * 512  # percentiles from a regular subsample: fast, and plenty
DRAG_PIXELS_PER_RANGE = 600.0  # a 600-pixel drag sweeps the image's whole value range


@dataclass(frozen=True)
class WindowPresets:
    """The named windows offered for one image, plus the scale the drag gesture uses."""

    windows: dict[str, Window]
    value_range: tuple[float, float]
    min_width: float

    def __getitem__(self, name: str) -> Window:
        return self.windows[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.windows)


def subsample(pixels: np.ndarray, max_pixels: int = _SAMPLE_PIXELS) -> np.ndarray:
    """A strided view with at most about ``max_pixels`` pixels (no copy)."""
    step = max(1, int(np.ceil(np.sqrt(pixels.size / max_pixels))))
    return pixels[::step, ::step]


def window_presets(xray: XRay) -> WindowPresets:
    """Presets for this image: from the file, full range, Lung and Mediastinum."""
    sample = subsample(xray.pixels)
    low, high = float(sample.min()), float(sample.max())
    low, high = min(low, xray.value_range[0]), max(high, xray.value_range[1])
    windows = {PRESET_FILE: xray.window, PRESET_FULL: Window.from_range(low, high)}
    for name, (p_low, p_high) in _CHEST_PERCENTILES.items():
        if xray.inverted:  # shown dark-for-high: mirror the display percentiles
            p_low, p_high = 100.0 - p_high, 100.0 - p_low
        v_low, v_high = np.percentile(sample, [p_low, p_high])
        if v_high - v_low < 1e-6:  # flat image: nothing to stretch
            v_low, v_high = low, high
        windows[name] = Window.from_range(float(v_low), float(v_high))
    # narrowest window the drag allows: a near-threshold view, never a zero division
    return WindowPresets(windows, (low, high), min_width=max((high - low) / 1000.0, 1e-3))


def dragged_window(
    start: Window, dx: float, dy: float, value_span: float, min_width: float = 1e-3
) -> Window:
    """The window after a right-drag of (dx, dy) screen pixels from ``start``.

    Horizontal changes the width (right widens, lowering contrast); vertical changes
    the level (down raises it, darkening the image), as in common PACS viewers. The
    speed scales with the image's value range, so 8-bit and 16-bit images feel alike.
    """
    per_pixel = max(value_span, 1e-6) / DRAG_PIXELS_PER_RANGE
    width = max(start.width + dx * per_pixel, min_width)
    center = start.center + dy * per_pixel
    return Window(center=center, width=width)


def format_window(window: Window) -> str:
    """'W 255  L 128': whole numbers for wide windows, 3 significant digits for narrow ones."""
    return f"W {_number(window.width)}  L {_number(window.center)}"


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
