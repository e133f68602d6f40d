"""The validation page's results: the report's figures as the window shows them.

Plain functions from the report (``xraydesk.validate.report``) to texts and table rows,
so the page shows exactly what the JSON says: per-class n, sensitivity, specificity and
AUC with their 95 % intervals, accuracy and ECE, the shares flagged and withheld, the
sentences saying where the site is worse than the model card, and an adopted profile's
held-back figures with and without it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

from xraydesk.validate.report import nothing_worse

CLASS_COLUMNS = ("Class", "n", "Sensitivity (95 % CI)", "Specificity (95 % CI)", "AUC (95 % CI)")
PROFILE_COLUMNS = ("Held-back part", "n", "Accuracy (95 % CI)", "ECE", "Withheld")


def with_interval(value: float | None, interval: list[float] | None) -> str:
    """``0.812 (0.701-0.889)``; ``-`` where the figure does not exist."""
    if value is None:
        return "-"
    if not interval:
        return f"{value:.3f}"
    return f"{value:.3f} ({interval[0]:.3f}-{interval[1]:.3f})"


def class_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per class: display name, n, sensitivity, specificity, AUC (with intervals)."""
    fig = report["figures"]
    names = report["model"]["display_names"]
    per_class = (fig.get("metrics") or {}).get("per_class") or {}
    rows = []
    for cid in report["model"]["classes"]:
        pc = per_class.get(cid, {})
        rows.append(
            (
                names.get(cid, cid),
                str(fig["n_per_class"][cid]),
                with_interval(pc.get("sensitivity"), pc.get("sensitivity_ci95")),
                with_interval(pc.get("specificity"), pc.get("specificity_ci95")),
                with_interval(pc.get("auc"), pc.get("auc_ci95")),
            )
        )
    return rows


def summary_text(report: dict[str, Any]) -> str:
    """Counts, accuracy and ECE, and the shares flagged and withheld."""
    fig = report["figures"]
    metrics = fig.get("metrics") or {}
    lines = [
        f"{fig['n_images']} images, {fig['n_answered']} answered. "
        f"Flagged (any warning): {share(fig['flagged'])}. "
        f"Withheld (no answer): {share(fig['withheld'])}."
    ]
    if metrics:
        lines.append(
            f"Accuracy {with_interval(metrics['accuracy'], metrics.get('accuracy_ci95'))}; "
            f"ECE {metrics['ece']:.3f}."
        )
    in_use = report["model"].get("site_profile_in_use")
    if in_use:
        lines.append(f"Site profile in use: {in_use}.")
    return "\n".join(lines)


def share(part: dict[str, Any]) -> str:
    """``12.5 % (5 of 40)``."""
    return f"{part['share']:.1%} ({part['n']})"


def worse_text(report: dict[str, Any]) -> str:
    """Where the site is worse than the model card, one sentence per figure."""
    worse = report["worse_than_card"]
    if not worse:
        return nothing_worse(report) if report["figures"].get("metrics") else ""
    return "Where this site is worse than the model card:\n" + "\n".join(f"• {w}" for w in worse)


def profile_rows(section: dict[str, Any]) -> list[tuple[str, ...]]:
    """The held-back part's figures without and with the adopted profile."""
    rows = []
    for key, what in (
        ("held_back_without_profile", "without the profile"),
        ("held_back_with_profile", "with the profile"),
    ):
        fig = section.get(key)
        if not fig:
            continue
        metrics = fig.get("metrics") or {}
        rows.append(
            (
                what,
                str(fig["n_images"]),
                with_interval(metrics.get("accuracy"), metrics.get("accuracy_ci95")),
                "-" if metrics.get("ece") is None else f"{metrics['ece']:.3f}",
                share(fig["withheld"]),
            )
        )
    return rows


def profile_text(section: dict[str, Any]) -> str:
    """What was adopted, on how many images, and why the held-back figures are the ones
    to believe."""
    p = section["profile"]
    thresholds = ", ".join(f"{c} {t:.3f}" for c, t in p["class_thresholds"].items())
    return (
        f"Site profile adopted: calibrated for this site on n = {p['fitted_on']['n']} "
        f"images (temperature {p['temperature']:.3f}, indeterminate below "
        f"{p['indeterminate_below']:.0%}, thresholds for sensitivity {p['sensitivity']:.0%}: "
        f"{thresholds}). {section['note']}"
    )


def fill_table(table: QTableWidget, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table.clear()
    table.setColumnCount(len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))
    table.resizeColumnsToContents()


def table_texts(table: QTableWidget) -> list[tuple[str, ...]]:
    """What a table shows, row by row (for tests and copying)."""
    return [
        tuple(table.item(r, c).text() for c in range(table.columnCount()))
        for r in range(table.rowCount())
    ]
