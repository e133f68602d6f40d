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
runtime returns them), so the check is one weighted sum over the channels and a resize
of a 5 x 5 map per image (tests/benchmarks/bench_attention.py measures it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xraydesk.classifier import Classifier
from xraydesk.imaging.resample import resize
from xraydesk.trust.codes import EVIDENCE_OUTSIDE_LUNGS, ResultWarning
from xraydesk.trust.lung_fields import input_chest_mask

# Below this share of the predicted class's heat-map mass in the lung fields and the
# mediastinum, the answer is withheld: 0.2 is half of what a map spread evenly over the
# film puts there (the region is 40 % of the film), so 80 % of the evidence lies outside.
# Measured (tests/benchmarks/bench_attention.py): it fires on 1.3 % of chest-3class's
# in-source test films (0 % kermany-pediatric, 1.5 % covid19-radiography, 3 % ozturk-nih)
# and on none of pediatric-pneumonia's; 0.25 would fire on 5.4 %, 0.3 on 11 %.
MIN_LUNG_SHARE = 0.2


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
    out = np.full(len(maps), np.nan)
    for n, small in enumerate(maps):
        mask = input_chest_mask(prep, None if shapes is None else shapes[n])
        out[n] = lung_share(small, mask)
    return out


def lung_share(class_map: np.ndarray, mask: np.ndarray) -> float:
    """The share of a ReLU'd class map's mass (h, w) inside ``mask`` (size, size), as the
    viewer shows the map: its floor removed, then resized bilinearly to the mask."""
    cam = np.asarray(class_map, np.float32)
    cam = cam - cam.min()
    if not np.isfinite(cam).all() or cam.max() <= 0:
        return float("nan")
    up = np.maximum(resize(cam, *mask.shape), 0.0)
    total = float(up.sum())
    return float(up[mask].sum() / total) if total > 0 else float("nan")


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
