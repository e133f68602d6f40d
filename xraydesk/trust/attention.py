"""Does the evidence lie in the lungs? The attention check of the one verdict.

A model trained on films from several hospitals can name a class from a burnt-in side
marker, a corner label, the film's border, the chest wall or the abdomen instead of the
lungs (the shortcut audit, trainer/shortcut_audit.py, measures it per model). Per image
this check takes the class activation map of the predicted class, the same map the
viewer shows (``Classifier.class_maps``: head weights times the last stage's
activations, ReLU, its floor removed, bilinearly resized to the input square), and the
share of its mass inside the lung fields and the mediastinum between them
(``trust.lung_fields.chest_mask``, a prior from normal films: about 40 % of the film).
Below ``MIN_LUNG_SHARE`` most of the evidence lies outside the chest: the verdict gets
``evidence_outside_lungs`` and the answer becomes indeterminate.

Cost: the activations come from the forward pass that gave the probabilities (every
runtime returns them), so the check is one weighted sum over the channels and two dot
products per image. The resize is linear: the map bilinearly enlarged to the input square
is ``Ry @ cam @ Rx.T`` (``imaging.resample.resize_matrix``), so the mass inside the mask
M is ``sum(cam * (Ry.T @ M @ Rx))`` and the whole mass ``sum(cam * (Ry.T @ 1 @ Rx))``:
two (h, w) weight maps per map shape and film box, cached, instead of a 160 x 160 resize
and a masked sum per image (0.5 ms per image before; tests/benchmarks/bench_decode_math.py
measures both, bench_attention.py the check's effect).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from xraydesk.classifier import Classifier
from xraydesk.imaging.resample import resize_matrix
from xraydesk.trust.codes import EVIDENCE_OUTSIDE_LUNGS, ResultWarning
from xraydesk.trust.lung_fields import boxed_chest_mask, film_box

# Below this share of the predicted class's heat-map mass in the lung fields and the
# mediastinum, the answer is withheld: 0.2 is half of what a map spread evenly over the
# film puts there (the region is 40 % of the film), so 80 % of the evidence lies outside.
# Measured (tests/benchmarks/bench_attention.py): it fires on 1.3 % of chest-3class's
# in-source test films (0 % kermany-pediatric, 1.5 % covid19-radiography, 3 % ozturk-nih)
# and on none of pediatric-pneumonia's; 0.25 would fire on 5.4 %, 0.3 on 11 %.
MIN_LUNG_SHARE = 0.2
Weights = tuple[np.ndarray, np.ndarray]  # (inside, total), see _mass_weights


def lung_shares(
    classifier: Classifier,
    activations: np.ndarray,
    probabilities: np.ndarray,
    shapes: Sequence[tuple[int, int] | None] | None = None,
) -> np.ndarray:
    """(N,) share of each image's predicted-class CAM mass inside the lung fields.

    ``activations`` (N, D, h, w) and ``probabilities`` (N, classes) come from one forward
    pass; ``shapes`` are the source images' (height, width), which place the lung fields
    when the model letterboxes (None: the film fills the input square). A row whose map
    has no mass at all (nothing speaks for the class anywhere) gets NaN: no judgement."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    maps = classifier.class_maps(activations, predicted)
    prep = classifier.preprocessing
    if not len(maps):
        return np.full(0, np.nan)
    h, w = maps.shape[1:]
    boxes = [film_box(prep, None if shapes is None else shapes[n]) for n in range(len(maps))]
    weights = [_box_weights(h, w, prep.size, box) for box in boxes]
    inside, total = (np.stack(part) for part in zip(*weights, strict=True))
    return _shares(maps, inside, total)


def lung_share(class_map: np.ndarray, mask: np.ndarray) -> float:
    """The share of a ReLU'd class map's mass (h, w) inside ``mask`` (H, W), as the viewer
    shows the map: its floor removed, then resized bilinearly to the mask."""
    cam = np.asarray(class_map, np.float32)
    inside, total = _mass_weights(cam.shape, np.asarray(mask, bool))
    return float(_shares(cam[None], inside[None], total[None])[0])


@lru_cache(maxsize=128)
def _box_weights(h: int, w: int, size: int, box: tuple[int, int, int, int]) -> Weights:
    """``_mass_weights`` of an (h, w) map for the chest mask of a film at ``box`` in the
    input square (read-only, shared: one pair per map shape and film aspect ratio)."""
    pair = _mass_weights((h, w), boxed_chest_mask(size, box))
    for array in pair:
        array.flags.writeable = False
    return pair


def _mass_weights(shape: tuple[int, int], mask: np.ndarray) -> Weights:
    """(inside, total), float64 (h, w): what each cell of an (h, w) map puts inside
    ``mask`` and in all once the map is resized to the mask's shape. The resize weights
    are >= 0 (triangle weights), so a map >= 0 resizes to >= 0 everywhere: the clip at 0
    the viewer's map gets is exact and nothing here needs it."""
    rows = resize_matrix(shape[0], mask.shape[0])  # (H, h)
    cols = resize_matrix(shape[1], mask.shape[1])  # (W, w)
    inside = rows.T @ mask.astype(np.float64) @ cols
    total = np.outer(rows.sum(axis=0), cols.sum(axis=0))
    return inside, total


def _shares(maps: np.ndarray, inside: np.ndarray, total: np.ndarray) -> np.ndarray:
    """(N,) mass share inside for maps (N, h, w) with per-map weights (N, h, w): each map's
    floor removed first; NaN where a map is not finite or has no mass."""
    cams = np.asarray(maps, np.float32)
    out = np.full(len(cams), np.nan)
    with np.errstate(invalid="ignore"):  # inf - inf in a broken map: NaN, judged below
        cams = cams - cams.min(axis=(1, 2), keepdims=True)
    valid = np.isfinite(cams).all(axis=(1, 2))
    valid[valid] = cams[valid].max(axis=(1, 2)) > 0
    cams = np.where(valid[:, None, None], cams, 0.0).astype(np.float64)
    mass = np.einsum("nhw,nhw->n", cams, total)
    valid &= mass > 0
    out[valid] = np.einsum("nhw,nhw->n", cams[valid], inside[valid]) / mass[valid]
    return out


def attention_warning(share: float | None, threshold: float | None = None) -> ResultWarning | None:
    """``evidence_outside_lungs`` when less than ``threshold`` (None: ``MIN_LUNG_SHARE``)
    of the heat map of the answer lies in the lung fields; None when it does, or is
    unknown. The message does not name the class: it is shown while the class is held
    back."""
    threshold = MIN_LUNG_SHARE if threshold is None else threshold
    if share is None or not np.isfinite(share) or share >= threshold:
        return None
    return ResultWarning(
        EVIDENCE_OUTSIDE_LUNGS,
        f"Only {share:.0%} of the heat map of the model's answer lies in the lung fields and "
        f"the mediastinum (at least {threshold:.0%} expected): the model's evidence is "
        "mostly on the chest wall, the abdomen, the film's border or a burnt-in marker, not "
        "the lungs, so no class is given; read the image without the model's answer.",
    )
