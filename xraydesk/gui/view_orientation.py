"""Rotate and flip on screen: the view's transform, never the pixels.

The image, the heat map and the measurements all live in the scene in image pixel
coordinates; turning the view's transform turns them together, so the classifier and
Grad-CAM still see the file as stored and rulers still measure the file's pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QTransform

from xraydesk.viewer.orientation import Orientation

if TYPE_CHECKING:
    from xraydesk.gui.main_window import MainWindow


def orientation_transform(orientation: Orientation, zoom: float = 1.0) -> QTransform:
    """The QTransform (row-vector convention) of the orientation, scaled by ``zoom``."""
    (a, b), (c, d) = orientation.matrix()
    # Qt maps x' = m11 x + m21 y, y' = m12 x + m22 y
    return QTransform(a * zoom, c * zoom, b * zoom, d * zoom, 0.0, 0.0)


def rotate(window: MainWindow, degrees: int) -> None:
    state = window.state
    state.update(orientation=state.orientation.rotated(degrees))
    _say(window)


def flip(window: MainWindow, horizontal: bool) -> None:
    o = window.state.orientation
    window.state.update(orientation=o.flipped_horizontal() if horizontal else o.flipped_vertical())
    _say(window)


def reset_orientation(window: MainWindow) -> None:
    window.state.update(orientation=Orientation())
    _say(window)


def _say(window: MainWindow) -> None:
    label = window.state.orientation.label() or "Shown as stored"
    window.statusBar().showMessage(f"{label} (display only)", 4000)
