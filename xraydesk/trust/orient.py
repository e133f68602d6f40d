"""Orientation and inversion put right in memory.

``corrected`` turns a radiograph back and/or flips its grey scale on the loaded pixels
only; the file is never touched. The batch engine's decode stage and ``trust.check``
(``TrustCheck``, one image for the viewer and the DICOM results) call it when the input
gate is confident an image is rotated or inverted. ``flipped_left_right`` is the viewer's
one-click answer to a film the appearance heads call ``mirrored``: the user asks, the
pixels are flipped in memory and the image is analysed again.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xraydesk.imaging.xray import XRay
from xraydesk.trust.codes import INVERTED, ROTATED
from xraydesk.trust.gate import GateResult


def corrected(xray: XRay, gate: GateResult) -> XRay:
    """A copy of ``xray`` turned back and/or with its grey scale flipped, as the gate says."""
    codes = set(gate.codes)
    pixels, inverted, notes = xray.pixels, xray.inverted, list(xray.notes)
    if ROTATED in codes and gate.turns:
        pixels = np.ascontiguousarray(np.rot90(pixels, -gate.turns))
        notes.append(f"turned back by {gate.turns * 90} degrees by XRayDesk (file unchanged)")
    if INVERTED in codes:
        inverted = not inverted
        notes.append("grey scale inverted back by XRayDesk (file unchanged)")
    return dataclasses.replace(xray, pixels=pixels, inverted=inverted, notes=tuple(notes))


FLIPPED_BY_USER = "flipped left to right by the user"


def flipped_left_right(xray: XRay) -> XRay:
    """A copy of ``xray`` with its pixels mirrored left to right (the file is unchanged)."""
    pixels = np.ascontiguousarray(xray.pixels[:, ::-1])
    notes = (*xray.notes, f"{FLIPPED_BY_USER} in XRayDesk (file unchanged)")
    return dataclasses.replace(xray, pixels=pixels, notes=notes)


def correction_text(gate: GateResult) -> str:
    """What one click would do, in words ("turn back by 90 degrees and invert")."""
    parts = []
    if ROTATED in gate.codes and gate.turns:
        parts.append(f"turn back by {gate.turns * 90} degrees")
    if INVERTED in gate.codes:
        parts.append("invert the grey scale")
    return " and ".join(parts)
