"""How the current image is shown, as plain Python (no Qt), napari style.

The Qt widgets read this state and call ``update``; they subscribe to hear what
changed. Keeping it free of Qt makes every rule here (zoom limits, what a preset
means, what a drag does) testable without a display.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

from xraydesk.explain.overlay import DEFAULT_OPACITY, MAX_OPACITY
from xraydesk.imaging.xray import Window
from xraydesk.viewer.orientation import Orientation
from xraydesk.viewer.windowing import PRESET_FILE

MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
__all__ = ["DEFAULT_OPACITY", "MAX_OPACITY", "ViewState", "clamp_opacity", "clamp_zoom"]

Listener = Callable[[frozenset[str]], None]


@dataclass
class ViewState:
    window: Window | None = None  # None until an image is open
    preset: str | None = PRESET_FILE  # the preset the window came from; None after a drag
    invert: bool = False  # the user's inversion, on top of the file's own (MONOCHROME1)
    zoom: float = 1.0  # screen pixels per image pixel
    fit: bool = True  # follow the window size until the user zooms or pans
    overlay_visible: bool = True
    overlay_opacity: float = DEFAULT_OPACITY
    orientation: Orientation = field(
        default_factory=Orientation
    )  # rotate/flip on screen only, never the pixels
    _listeners: list[Listener] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.overlay_opacity = clamp_opacity(self.overlay_opacity)  # e.g. an older setting

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def update(self, **changes: object) -> frozenset[str]:
        """Set fields, then tell listeners which ones really changed."""
        known = {f.name for f in fields(self) if not f.name.startswith("_")}
        unknown = set(changes) - known
        if unknown:
            raise AttributeError(f"ViewState has no field(s) {sorted(unknown)}")
        if "zoom" in changes:
            changes["zoom"] = clamp_zoom(float(changes["zoom"]))  # type: ignore[arg-type]
        if "overlay_opacity" in changes:
            changes["overlay_opacity"] = clamp_opacity(changes["overlay_opacity"])  # type: ignore[arg-type]
        changed = frozenset(name for name, value in changes.items() if getattr(self, name) != value)
        for name in changed:
            setattr(self, name, changes[name])
        if changed:
            for listener in list(self._listeners):
                listener(changed)
        return changed


def clamp_zoom(zoom: float) -> float:
    return min(max(zoom, MIN_ZOOM), MAX_ZOOM)


def clamp_opacity(opacity: object) -> float:
    """The heat map's opacity within [0, MAX_OPACITY]: the film always shows through."""
    return min(max(float(opacity), 0.0), MAX_OPACITY)  # type: ignore[arg-type]
