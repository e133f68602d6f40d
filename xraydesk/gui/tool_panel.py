"""What a tool panel docked in the main window (batch, PACS) may offer the window.

The window wires a panel by these protocols, not by guessing at attribute names: a
panel that opens images has its ``open_image_requested`` connected to the viewer, one
that classifies follows the window's ``active_model_changed(card_path, device)``, and one
with workers of its own is stopped by ``shutdown`` before the window goes away. A panel
offers only what it needs; ``ToolPanel`` is all three together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from PySide6.QtCore import SignalInstance


@runtime_checkable
class OpensImages(Protocol):
    """Asks the viewer to open an image (a double-clicked row): emits its path."""

    open_image_requested: SignalInstance


@runtime_checkable
class FollowsModel(Protocol):
    """Classifies with the window's active model on the window's device."""

    def set_model(self, card_path: str | Path | None, device: str = "auto") -> None: ...


@runtime_checkable
class StopsWork(Protocol):
    """Has worker threads (a run, a node) to stop before the window closes."""

    def shutdown(self) -> None: ...


@runtime_checkable
class ToolPanel(OpensImages, FollowsModel, StopsWork, Protocol):
    """A full tool panel: opens images, follows the active model, stops its work."""
