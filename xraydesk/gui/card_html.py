"""A model card's test figures as HTML: the headline, a per-class table (sensitivity,
specificity) and a per-pool table (accuracy). Shared by Help > About and the Models
dialog, so neither shows the card's raw metrics dictionary."""

from __future__ import annotations

import html

from xraydesk.model.card import ModelCard
from xraydesk.trainer.card_figures import class_figures, percent, pool_figures
from xraydesk.trainer.metrics import format_with_interval, headline_metrics

CELL = "padding: 1px 10px 1px 0"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th align='left' style='{CELL}'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td style='{CELL}'>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def figures_html(card: ModelCard) -> str:
    """The card's test figures in words and tables ("" when the card has none)."""
    test = card.metrics.get("test") or {}
    if not test:
        return "<p><i>This card states no test figures.</i></p>"
    head = headline_metrics(test)
    lines = [f"Tested on {head['n']} images held out from training"]
    if head["accuracy"] is not None:
        accuracy = format_with_interval(head["accuracy"], head["accuracy_ci95"], percent=True)
        lines.append(f"accuracy {accuracy}")
    if head["macro_auc"] is not None:
        lines.append(f"mean AUC {format_with_interval(head['macro_auc'], head['macro_auc_ci95'])}")
    if test.get("ece") is not None:
        lines.append(f"calibration error {float(test['ece']):.3f}")
    parts = [f"<p>{html.escape('; '.join(lines))}.</p>"]
    classes = class_figures(test, card.display_names)
    if classes:
        rows = [
            (f.name, str(f.support), percent(f.sensitivity), percent(f.specificity))
            for f in classes
        ]
        parts.append("<p><b>Per class</b></p>")
        parts.append(_table(("Class", "Test images", "Sensitivity", "Specificity"), rows))
    pools = pool_figures(test)
    if pools:
        rows = [(p.pool, str(p.n), percent(p.accuracy)) for p in pools]
        parts.append("<p><b>Per pool (source)</b></p>")
        parts.append(_table(("Pool", "Test images", "Accuracy"), rows))
        parts.append(
            "<p><i>Pools differ in hospital, scanner and patients: a pool's accuracy says "
            "more about images like it than the overall figure does.</i></p>"
        )
    return "".join(parts)
