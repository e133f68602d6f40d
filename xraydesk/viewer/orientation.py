"""Rotation and flip of the view, as a display transform only (no Qt here).

The classifier, the heat map and every measurement keep working in the file's own pixel
grid; only the screen shows the film turned or mirrored. Every orientation of a square
(the dihedral group D4) is a clockwise rotation applied after an optional left-right
mirror of the image, so two numbers describe it and flips made on screen are folded in
(a mirror of a turned film mirrors what the reader sees, not the file's columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROTATIONS = (0, 90, 180, 270)


@dataclass(frozen=True)
class Orientation:
    """Screen = rotate(``rotation`` degrees clockwise) after mirror(columns if ``mirrored``)."""

    rotation: int = 0
    mirrored: bool = False

    def __post_init__(self) -> None:
        if self.rotation % 90 != 0:
            raise ValueError(f"rotation must be a multiple of 90 degrees, not {self.rotation}")
        object.__setattr__(self, "rotation", self.rotation % 360)

    @property
    def is_identity(self) -> bool:
        return self.rotation == 0 and not self.mirrored

    def rotated(self, degrees: int) -> Orientation:
        """Turned on screen by ``degrees`` (clockwise positive, multiples of 90)."""
        return Orientation(self.rotation + degrees, self.mirrored)

    def flipped_horizontal(self) -> Orientation:
        """Mirrored left-right on screen (S R(r) = R(-r) S)."""
        return Orientation(-self.rotation, not self.mirrored)

    def flipped_vertical(self) -> Orientation:
        """Mirrored top-bottom on screen (a vertical flip is a horizontal one turned 180)."""
        return Orientation(180 - self.rotation, not self.mirrored)

    def matrix(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """2 x 2 integer matrix taking image offsets (x right, y down) to screen offsets."""
        cos, sin = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[self.rotation]
        mirror = -1 if self.mirrored else 1
        # rotation (y down, clockwise): [[cos, -sin], [sin, cos]] times diag(mirror, 1)
        return ((cos * mirror, -sin), (sin * mirror, cos))

    def displayed_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(rows, columns) of the image as shown."""
        rows, cols = shape
        return (cols, rows) if self.rotation in (90, 270) else (rows, cols)

    def to_screen(self, point: tuple[float, float], shape: tuple[int, int]) -> tuple[float, float]:
        """An image point (x, y) as a point of the shown image (origin at its top left).

        Points are continuous coordinates: pixel (c, r) covers [c, c+1) x [r, r+1).
        """
        (a, b), (c, d) = self.matrix()
        rows, cols = shape
        corners = [(0, 0), (cols, 0), (0, rows), (cols, rows)]
        xs = [a * x + b * y for x, y in corners]
        ys = [c * x + d * y for x, y in corners]
        x, y = point
        return a * x + b * y - min(xs), c * x + d * y - min(ys)

    def to_image(self, point: tuple[float, float], shape: tuple[int, int]) -> tuple[float, float]:
        """The inverse of ``to_screen``: where a point of the shown image lies in the file."""
        (a, b), (c, d) = self.matrix()
        origin = self.to_screen((0.0, 0.0), shape)
        x, y = point[0] - origin[0], point[1] - origin[1]
        # the matrix is orthogonal with entries in {-1, 0, 1}: its inverse is its transpose
        return a * x + c * y, b * x + d * y

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The array (rows, columns[, channels]) as it is shown, for exports and checks."""
        out = array[:, ::-1] if self.mirrored else array
        return np.rot90(out, k=-(self.rotation // 90))  # np.rot90 turns counter-clockwise

    def label(self) -> str:
        """'Rotated 90°, mirrored' for the corner text ("" when shown as stored)."""
        parts = []
        if self.rotation:
            parts.append(f"Rotated {self.rotation}°")
        if self.mirrored:
            parts.append("mirrored" if parts else "Mirrored")
        return ", ".join(parts)
