"""The site validation report as data: what the JSON holds and the PDF shows.

``build_report`` puts together the model, the site (folder, where the labels came from,
the label mapping), the figures (``site_metrics``), the comparison with the model card
(``compare``) and one row per image. Images are named by their path inside the site
folder; no DICOM header field other than the subgroups (manufacturer, view, age band,
sex) is ever read, so no patient identifier can reach the report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xraydesk import __version__
from xraydesk.files import write_atomic
from xraydesk.model.card import ModelCard
from xraydesk.trainer.metrics import CI_METHODS
from xraydesk.validate.compare import MARGIN, compare_with_card, plain_summary
from xraydesk.validate.labels import LabelledSet
from xraydesk.validate.site_metrics import image_rows, site_figures
from xraydesk.validate.site_run import SiteImage

FORMAT = "xraydesk-site-validation/1"


def build_report(
    card: ModelCard, labelled: LabelledSet, images: Sequence[SiteImage]
) -> dict[str, Any]:
    """The whole report, JSON-ready."""
    class_ids = card.class_ids
    figures = site_figures(images, class_ids)
    card_test = (card.metrics or {}).get("test")
    comparison = compare_with_card(figures.get("metrics"), card_test, class_ids)
    return {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "xraydesk": __version__,
        "model": {
            "name": card.name,
            "version": card.version,
            "label": card.label,
            "classes": list(class_ids),
            "display_names": dict(card.display_names),
            "card_test_n": (card_test or {}).get("n"),
        },
        "site": {
            "folder": str(labelled.folder),
            "labels_from": labelled.source,
            "mapping": dict(labelled.mapping),
            "skipped_by_mapping": labelled.skipped,
            "images_labelled": labelled.total_before_sample,
            "images_validated": len(labelled.images),
            "sampled": len(labelled.images) < labelled.total_before_sample,
        },
        "method": {
            **CI_METHODS,
            "metrics_over": "images that got an answer (a class), flagged or not",
            "worse_when": (
                f"the site's figure is below the card's 95 % interval or more than {MARGIN} "
                "below the card's figure (ECE: above); clearly worse when the site's own "
                "interval also leaves out the card's figure"
            ),
        },
        "figures": figures,
        "comparison": comparison,
        "worse_than_card": plain_summary(comparison),
        "images": image_rows(images),
    }


def write_json(report: dict[str, Any], path: Path) -> None:
    """The report as JSON, written whole or not at all."""
    write_atomic(path, json.dumps(report, indent=1, allow_nan=False) + "\n")


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The few lines the command prints: counts, accuracy, and where the site is worse."""
    fig = report["figures"]
    counts = ", ".join(f"{c} {n}" for c, n in fig["n_per_class"].items())
    lines = [
        f"{fig['n_images']} images ({counts}); flagged {fig['flagged']['share']:.1%}, "
        f"withheld {fig['withheld']['share']:.1%}"
    ]
    metrics = fig.get("metrics")
    if metrics:
        low, high = metrics["accuracy_ci95"]
        lines.append(
            f"accuracy {metrics['accuracy']:.3f} (95 % CI {low:.3f}-{high:.3f}), "
            f"ECE {metrics['ece']:.3f}"
        )
    worse = report["worse_than_card"]
    if worse:
        figures_word = "figure" if len(worse) == 1 else "figures"
        lines.append(f"worse than the model card on {len(worse)} {figures_word}:")
        lines += [f"  {line}" for line in worse]
    elif metrics:
        lines.append(nothing_worse(report))
    return lines


def nothing_worse(report: dict[str, Any]) -> str:
    """What to say when no figure is worse: that, or that the card has none to compare."""
    if not any(row["card"] is not None for row in report["comparison"]):
        return "the model card states no test figures to compare with"
    return "no figure is worse than the model card's"
