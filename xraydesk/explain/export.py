"""Writing heat-map overlays to PNG files (the batch engine's "Grad-CAM images" option).

The map is the default method's (CAM, explain/cam.py): one forward pass and no backward
pass per image, the same map the viewer shows first. Each PNG carries its legend
(``explain.legend``): the colour scale, the class the map supports, the model's name and
version and "Not for diagnosis", so the picture says what it is wherever it goes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PIL import Image

from xraydesk.classifier import Classifier
from xraydesk.errors import XRayDeskError
from xraydesk.explain.bounded import bounded_overlay
from xraydesk.explain.heatmaps import heat_map
from xraydesk.explain.legend import with_legend
from xraydesk.explain.methods import DEFAULT_METHOD, method_label
from xraydesk.explain.overlay import DEFAULT_OPACITY
from xraydesk.explain.quality import EMPTY_HEATMAP, is_empty_heatmap
from xraydesk.imaging import load_xray
from xraydesk.imaging.xray import XRay


def cam_filename(source: Path) -> str:
    """A stable, collision-free name: same stems in different folders do not overwrite."""
    tag = hashlib.sha1(os.fsencode(source.resolve())).hexdigest()[:8]  # any name's bytes
    return f"{source.stem}-{tag}-gradcam.png"


def write_cam_png(
    classifier: Classifier,
    source: Path,
    out_dir: Path,
    class_id: str | None = None,
    opacity: float = DEFAULT_OPACITY,
    xray: XRay | None = None,
    method: str = DEFAULT_METHOD,
) -> Path:
    """Write ``source``'s heat-map overlay (``method``) into ``out_dir``; returns the path.

    ``xray`` is the image already in memory (the batch engine keeps it from decoding);
    without it the file is loaded. ``class_id`` None explains the predicted class. The
    image is labelled below (``explain.legend``): colour scale, class, model, notice.
    Raises ``XRayDeskError`` when the map cannot be computed or explains nothing (empty or
    flat: no PNG, rather than an image labelled as an explanation) and ``OSError`` when
    the PNG cannot be written, so a caller can tell a bad image from a full disk.
    """
    if xray is None:
        xray = load_xray(source)
    cam = heat_map(classifier, xray, class_id, method)
    if is_empty_heatmap(cam.heatmap):
        raise XRayDeskError(f"{EMPTY_HEATMAP}, so no {method_label(method)} image is written")
    rgb = bounded_overlay(xray, cam.heatmap, opacity)  # at most MAX_OVERLAY_SIDE a side
    card = classifier.card
    rgb = with_legend(rgb, card.display_names.get(cam.class_id, cam.class_id), card.label)
    del cam
    out = out_dir / cam_filename(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(out)
    return out
