"""The site validation report as a PDF, drawn with matplotlib (no Qt, no display).

matplotlib comes with grad-cam (a dependency); only its object-oriented API is used
(``Figure`` and ``PdfPages``, no pyplot), so no GUI backend is ever chosen. Pages:
summary and comparison with the card; per-class figures and the confusion matrix; ROC
curves and the reliability diagram; subgroups and the most confidently wrong images.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xraydesk.errors import XRayDeskError
from xraydesk.printable import printable
from xraydesk.validate.compare import CLEARLY_WORSE, WORSE
from xraydesk.validate.report import nothing_worse

A4 = (8.27, 11.69)
WORSE_COLOUR, CLEARLY_COLOUR = "#fde2c8", "#f8c0c0"
THUMB = 256


def write_pdf(report: dict[str, Any], path: Path, files: Mapping[str, Path]) -> None:
    """Write the report's PDF to ``path``; ``files``: each image's report name -> its file
    (for the thumbnails)."""
    try:
        from matplotlib.backends.backend_pdf import PdfPages
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise XRayDeskError(f"{path}: cannot make the PDF: matplotlib is not installed") from exc
    side = path.with_name(path.name + ".part")
    try:
        with PdfPages(side, metadata={"Title": "XRayDesk site validation"}) as pdf:
            for draw in (_summary_page, _class_page, _curves_page, _wrong_page):
                fig = Figure(figsize=A4)
                if draw(fig, report, files):
                    printable_texts(fig)
                    pdf.savefig(fig)
        side.replace(path)
    except OSError as exc:
        side.unlink(missing_ok=True)
        raise XRayDeskError(f"{path}: could not write the PDF ({exc.strerror or exc})") from exc


def printable_texts(fig) -> None:
    """Every text of ``fig`` as printable lines: a site label or file name from a folder
    named in non-UTF-8 bytes made matplotlib raise a TypeError, and no PDF was written."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        lines = text.get_text().split("\n")
        text.set_text("\n".join(printable(line) for line in lines))


def _summary_page(fig, report: dict[str, Any], files: Mapping[str, Path]) -> bool:
    model, site, fig_data = report["model"], report["site"], report["figures"]
    counts = ", ".join(f"{_name(report, c)} {n}" for c, n in fig_data["n_per_class"].items())
    answered = fig_data["answered_unflagged"]
    lines = [
        f"Model: {model['label']}",
        f"Site folder: {site['folder']} (labels from {site['labels_from']})",
        f"Images: {fig_data['n_images']} ({counts})"
        + (f", a seeded sample of {site['images_labelled']}" if site["sampled"] else ""),
        _mapping_line(site),
        f"Flagged (any warning): {_pct(fig_data['flagged'])}; "
        f"withheld (no answer): {_pct(fig_data['withheld'])}",
        f"Accuracy of the answers given without a warning: "
        f"{_ci_text(answered['accuracy'], answered['accuracy_ci95'])} on {answered['n']} images",
        f"Made {report['created']} by XRayDesk {report['xraydesk']}",
    ]
    if model.get("site_profile_in_use"):
        lines.insert(-1, f"Site profile in use: {model['site_profile_in_use']}")
    if report.get("site_profile"):  # adopted in this run: held-back figures, with and without
        from xraydesk.validate.profile_fit import profile_lines

        lines[-1:-1] = profile_lines(report["site_profile"])
    fig.text(0.06, 0.95, "Site validation report", fontsize=18, weight="bold")
    y = _paragraphs(fig, 0.91, lines, size=9) - 0.02
    worse = report["worse_than_card"]
    head = "Where this site is worse than the model card" if worse else "Compared with the card"
    fig.text(0.06, y, head, fontsize=12, weight="bold")
    said = worse or [nothing_worse(report).capitalize() + "."]
    y = _paragraphs(fig, y - 0.03, said, size=8.5)
    rows = [
        [
            r["metric"],
            _ci_text(r["site"], r["site_ci95"]),
            _ci_text(r["card"], r["card_ci95"]),
            "-" if r["difference"] is None else f"{r['difference']:+.3f}",
            r["verdict"],
        ]
        for r in report["comparison"]
    ]
    if rows:
        colours = [_verdict_colour(r["verdict"]) for r in report["comparison"]]
        height = min(0.03 + 0.022 * len(rows), y - 0.04)
        ax = fig.add_axes((0.04, y - 0.02 - height, 0.92, height))
        _table(ax, ["figure", "site (95 % CI)", "card (95 % CI)", "site - card", ""], rows, colours)
    fig.text(0.06, 0.02, textwrap.fill(report["method"]["worse_when"], 120), fontsize=7)
    return True


def _class_page(fig, report: dict[str, Any], files: Mapping[str, Path]) -> bool:
    metrics = report["figures"].get("metrics")
    if not metrics:
        return False
    ids = report["model"]["classes"]
    fig.text(0.06, 0.95, "Per class", fontsize=14, weight="bold")
    rows = []
    for cid in ids:
        pc = metrics["per_class"][cid]
        rows.append(
            [
                _name(report, cid),
                str(report["figures"]["n_per_class"][cid]),
                _ci_text(pc["sensitivity"], pc["sensitivity_ci95"]),
                _ci_text(pc["specificity"], pc["specificity_ci95"]),
                _ci_text(pc["auc"], pc.get("auc_ci95")),
            ]
        )
    ax = fig.add_axes((0.04, 0.78, 0.92, 0.04 + 0.03 * len(rows)))
    _table(ax, ["class", "n", "sensitivity", "specificity", "AUC"], rows)
    acc = _ci_text(metrics["accuracy"], metrics["accuracy_ci95"])
    fig.text(0.06, 0.74, f"Accuracy {acc} on {metrics['n']} answered images", fontsize=9)
    cm = np.array(metrics["confusion_matrix"])
    ax = fig.add_axes((0.2, 0.12, 0.6, 0.5))
    ax.imshow(cm, cmap="Blues")
    names = [_name(report, c) for c in ids]
    ax.set_xticks(range(len(ids)), names, rotation=20)
    ax.set_yticks(range(len(ids)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (site label)")
    ax.set_title("Confusion matrix (answered images)")
    top = cm.max() if cm.size else 0
    for (i, j), value in np.ndenumerate(cm):
        colour = "white" if top and value > top / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=11)
    return True


def _curves_page(fig, report: dict[str, Any], files: Mapping[str, Path]) -> bool:
    metrics = report["figures"].get("metrics")
    if not metrics:
        return False
    ax = fig.add_axes((0.14, 0.56, 0.72, 0.38))
    curves = 0
    for cid, points in metrics.get("roc", {}).items():
        if points:
            curves += 1
            pc = metrics["per_class"][cid]
            fpr, tpr = zip(*points, strict=True)
            ax.plot(
                fpr,
                tpr,
                label=f"{_name(report, cid)}: AUC {_ci_text(pc['auc'], pc.get('auc_ci95'))}",
            )
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC, one class against the rest")
    if curves:
        ax.legend(fontsize=7, loc="lower right")
    else:  # no class with both answered positives and negatives (matplotlib would warn)
        ax.text(0.5, 0.5, "no ROC curve: too few answered images of each class",
                ha="center", va="center", fontsize=8, transform=ax.transAxes)  # fmt: skip
    ax = fig.add_axes((0.14, 0.08, 0.72, 0.38))
    bins = [b for b in metrics["reliability"] if b["n"]]
    ax.bar(
        [(b["low"] + b["high"]) / 2 for b in bins],
        [b["accuracy"] for b in bins],
        width=[b["high"] - b["low"] for b in bins],
        edgecolor="black",
        color="#9ecae1",
        label="accuracy in the bin",
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for b in bins:
        ax.text((b["low"] + b["high"]) / 2, 0.02, str(b["n"]), ha="center", fontsize=6)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy")
    ax.set_title(f"Reliability diagram (ECE {metrics['ece']:.3f}; n per bin at the foot)")
    ax.legend(fontsize=7, loc="upper left")
    return True


def _wrong_page(fig, report: dict[str, Any], files: Mapping[str, Path]) -> bool:
    figures = report["figures"]
    subgroups, wrong = figures.get("subgroups") or {}, figures.get("most_confidently_wrong") or []
    if not subgroups and not wrong:
        return False
    y = 0.95
    fig.text(0.06, y, "Subgroups (from the DICOM headers)", fontsize=14, weight="bold")
    rows = [
        [key, g["value"], str(g["n"]), _ci_text(g.get("accuracy"), g.get("accuracy_ci95"))]
        for key, groups in subgroups.items()
        for g in groups
    ]
    if rows:
        height = min(0.03 + 0.022 * len(rows), 0.4)
        ax = fig.add_axes((0.04, y - 0.02 - height, 0.92, height))
        _table(ax, ["subgroup", "value", "n", "accuracy (95 % CI)"], rows)
        y -= height + 0.06
    else:
        fig.text(0.06, y - 0.03, "No file states a manufacturer, view, age or sex.", fontsize=9)
        y -= 0.08
    if wrong:
        fig.text(0.06, y, "Most confidently wrong", fontsize=14, weight="bold")
        _thumbnails(fig, report, wrong, files, top=y - 0.02)
    return True


def _thumbnails(fig, report, wrong: Sequence[dict], files: Mapping[str, Path], top: float) -> None:
    cols, size = 4, min(0.21, (top - 0.04) / 2 - 0.04)
    for i, item in enumerate(wrong[:8]):
        row, col = divmod(i, cols)
        ax = fig.add_axes((0.04 + col * 0.235, top - (row + 1) * (size + 0.05), 0.21, size))
        ax.set_axis_off()
        path = files.get(item["name"])
        pixels = None if path is None else _thumbnail(path)
        if pixels is not None:
            ax.imshow(pixels, cmap="gray", vmin=0, vmax=1)
        caption = (
            f"{textwrap.shorten(item['name'], 34)}\ntrue {_name(report, item['label'])}, "
            f"said {_name(report, item['prediction'])} {item['confidence']:.0%}"
        )
        ax.set_title(caption, fontsize=6)


def _thumbnail(path: Path) -> np.ndarray | None:
    from xraydesk.imaging.loader import load_xray

    try:
        xray = load_xray(path)
    except (XRayDeskError, OSError):
        return None
    step = max(1, max(xray.pixels.shape) // THUMB)
    pixels = xray.pixels[::step, ::step].astype(np.float64)
    low, high = xray.window.low, xray.window.high
    pixels = np.clip((pixels - low) / max(high - low, 1e-6), 0.0, 1.0)
    return 1.0 - pixels if xray.inverted else pixels


def _table(ax, header: list[str], rows: list[list[str]], colours=None) -> None:
    ax.set_axis_off()
    cell_colours = [[c] * len(header) for c in colours] if colours else None
    table = ax.table(
        cellText=rows, colLabels=header, cellColours=cell_colours, loc="upper left", cellLoc="left"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    table.auto_set_column_width(list(range(len(header))))
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(weight="bold")


def _paragraphs(fig, y: float, lines: Sequence[str], size: float) -> float:
    for line in lines:
        wrapped = textwrap.wrap(line, 110) or [""]
        for part in wrapped:
            fig.text(0.06, y, part, fontsize=size)
            y -= 0.018
    return y


def _mapping_line(site: dict[str, Any]) -> str:
    """How the site's labels were read, where they are not the model's class ids."""
    mapped = [f"{a} as {b}" for a, b in site["mapping"].items() if a != b]
    skipped = site.get("skipped_by_mapping") or 0
    text = "Site labels read " + ", ".join(mapped) if mapped else "Site labels are class ids"
    return text + (f"; {skipped} images left out by --map" if skipped else "")


def _verdict_colour(verdict: str) -> str:
    return {WORSE: WORSE_COLOUR, CLEARLY_WORSE: CLEARLY_COLOUR}.get(verdict, "white")


def _name(report: dict[str, Any], cid: str | None) -> str:
    return report["model"]["display_names"].get(cid or "", cid or "-")


def _pct(share: dict[str, Any]) -> str:
    ci = share.get("share_ci95")
    text = f"{share['share']:.1%} ({share['n']})"
    return text if not ci else f"{text}, 95 % CI {ci[0]:.1%}-{ci[1]:.1%}"


def _ci_text(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if not ci else f"{value:.3f} ({ci[0]:.3f}-{ci[1]:.3f})"
