"""Writing Grad-CAM overlays to PNG files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from xraydesk.explain.gradcam import grad_cam
from xraydesk.explain.overlay import blend_overlay
from xraydesk.imaging import load_xray
from xraydesk.model.classifier import Classifier


def cam_filename(source: Path) -> str:
    """A stable, collision-free name: same stems in different folders do not overwrite."""
    tag = hashlib.sha1(str(source.resolve()).encode("utf-8")).hexdigest()[:8]
    return f"{source.stem}-{tag}-gradcam.png"


def write_cam_png(
    classifier: Classifier,
    source: Path,
    out_dir: Path,
    class_id: str | None = None,
    opacity: float = 0.45,
) -> Path:
    xray = load_xray(source)
    cam = grad_cam(classifier, xray, class_id)
    rgb = blend_overlay(xray.render(), cam.heatmap, opacity)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / cam_filename(source)
    Image.fromarray(rgb).save(out)
    return out
