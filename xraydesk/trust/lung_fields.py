"""Where the lungs lie on a frontal chest film: the prior of the attention check.

No lung masks ship with the training data, so the lung fields come from intensity: on
1,291 normal training films of the three pools with normals (adult and pediatric) the
lungs were estimated as the large dark regions inside the body, and ``lung_prior.json``
keeps, for each point of the normalised film (32 x 32), the share of films in which it
was lung (training/lung_field_prior.py made it and says how). The lung fields are the points that
were lung on at least ``LEVEL`` of the films. The attention check counts the mediastinum
between them as inside too (``chest_mask``: each row filled from the right lung field to
the left one): the heart's outline is evidence a reader uses. Outside lie what the
shortcut audit names (corners, the border band, the burnt-in markers that sit there) and
also the chest wall, the neck and shoulders and the abdomen below the diaphragm.

A prior, not a segmentation of this image: a film that is badly centred or cropped
unusually tight puts its lungs elsewhere (the input gate flags the worst of those).
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from xraydesk.imaging.resample import resize
from xraydesk.model.preprocessing import Preprocessing

PRIOR_FILE = Path(__file__).with_name("lung_prior.json")
# The share of normal films in which a point was lung for it to count as lung field:
# 0.2 gives fields of about a quarter of the film whose outline follows the lungs of
# adult and pediatric films (tests/trust/test_attention.py checks the area and that the
# fields hold the films' darkest pixels); with the mediastinum, about 40 % of the film.
LEVEL = 0.2

_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def prior_frequency() -> np.ndarray:
    """(32, 32) float32 in [0, 1]: the share of normal films with lung at each point."""
    data = json.loads(PRIOR_FILE.read_text())
    return np.asarray(data["frequency_percent"], np.float32) / 100.0


def lung_mask(size: int, level: float = LEVEL) -> np.ndarray:
    """Boolean (size, size): the lung fields on a square film of ``size`` pixels."""
    return _mask(int(size), float(level)).copy()


@lru_cache(maxsize=16)
def _mask(size: int, level: float) -> np.ndarray:
    return _fields(size, size, level)


def _fields(height: int, width: int, level: float) -> np.ndarray:
    with _LOCK:
        frequency = resize(prior_frequency(), height, width)
    return frequency >= level


def with_mediastinum(fields: np.ndarray) -> np.ndarray:
    """The lung fields with what lies between them in each row (mediastinum and heart)."""
    out = fields.copy()
    for row, inside in zip(out, fields, strict=True):
        cols = np.flatnonzero(inside)
        if len(cols):
            row[cols[0] : cols[-1] + 1] = True
    return out


@lru_cache(maxsize=16)
def chest_mask(size: int, level: float = LEVEL) -> np.ndarray:
    """Boolean (size, size): the lung fields and the mediastinum between them, where the
    attention check expects the evidence (read-only: shared between calls)."""
    out = with_mediastinum(_mask(int(size), float(level)))
    out.flags.writeable = False
    return out


def input_chest_mask(
    preprocessing: Preprocessing, shape: tuple[int, int] | None = None, level: float = LEVEL
) -> np.ndarray:
    """``chest_mask`` in the model's input square (size, size), read-only.

    With letterboxing the film sits in ``preprocessing.content_box`` of the square and the
    padding is never lung; without the source ``shape`` (or when stretched) the film fills
    the square."""
    return boxed_chest_mask(preprocessing.size, film_box(preprocessing, shape), float(level))


def film_box(
    preprocessing: Preprocessing, shape: tuple[int, int] | None
) -> tuple[int, int, int, int]:
    """Where the film lies in the input square, (top, left, bottom, right): all of it
    without the source ``shape``. Films of one aspect ratio share a box, hence a mask."""
    size = preprocessing.size
    return (0, 0, size, size) if shape is None else preprocessing.content_box(*shape)


@lru_cache(maxsize=64)
def boxed_chest_mask(size: int, box: tuple[int, int, int, int], level: float = LEVEL) -> np.ndarray:
    """``chest_mask`` of a film placed at ``box`` in a (size, size) square, the rest
    outside; read-only (shared between calls)."""
    top, left, bottom, right = box
    if box == (0, 0, size, size):
        return chest_mask(size, level)
    out = np.zeros((size, size), dtype=bool)
    out[top:bottom, left:right] = with_mediastinum(_fields(bottom - top, right - left, level))
    out.flags.writeable = False
    return out
