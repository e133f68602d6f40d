"""The site's figures beside the model card's test figures, and where the site is worse.

A figure is called worse when the site's value is below the card's 95 % interval (the
card was tested on more images than most sites have, so its interval is the narrower),
or more than ``MARGIN`` below the card's value; for the calibration error, the same
upwards. It is called clearly worse when the site's own interval also leaves out the
card's value: then a smaller site sample cannot explain it. Card intervals the card
does not store are derived as the card was made: Wilson intervals from its confusion
matrix (accuracy, sensitivity, specificity); an AUC without a stored interval is judged
by the margin alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xraydesk.trainer.metrics import wilson_interval

MARGIN = 0.05
WORSE, CLEARLY_WORSE, NOT_WORSE, NO_FIGURE = "worse", "clearly worse", "not worse", "no figure"


def compare_with_card(
    site: dict[str, Any] | None, card_test: dict[str, Any] | None, class_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per figure: metric, site value and interval, card value and interval,
    difference (site - card) and the verdict (``WORSE``, ``CLEARLY_WORSE``, ...)."""
    if not site:
        return []
    card = _card_figures(card_test or {}, class_ids)
    rows = [_row("accuracy", site["accuracy"], site.get("accuracy_ci95"), *card["accuracy"])]
    rows.append(_row("macro AUC", site.get("macro_auc"), site.get("macro_auc_ci95"), *card["auc"]))
    for cid in class_ids:
        mine = site["per_class"][cid]
        for metric in ("sensitivity", "specificity", "auc"):
            label = f"{metric} {cid}" if metric != "auc" else f"AUC {cid}"
            theirs = card[f"{metric} {cid}"]
            rows.append(_row(label, mine.get(metric), mine.get(f"{metric}_ci95"), *theirs))
    rows.append(_row("ECE", site.get("ece"), None, card_test and card_test.get("ece"), None, True))
    return rows


def worse_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["verdict"] in (WORSE, CLEARLY_WORSE)]


def plain_summary(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Sentences a reader can act on: one per figure where the site is worse."""
    lines = []
    for r in worse_rows(rows):
        lower = "higher" if r["lower_is_better"] else "lower"
        why = (
            "even the site's own 95 % interval leaves out the card's figure"
            if r["verdict"] == CLEARLY_WORSE
            else "more images would tell whether this is the site or chance"
        )
        lines.append(
            f"{r['metric']}: {r['site']:.3f} here, {r['card']:.3f} on the card "
            f"({abs(r['difference']):.3f} {lower}; {r['verdict']}: {why})"
        )
    return lines


def _row(
    metric: str,
    site: float | None,
    site_ci: Sequence[float] | None,
    card: float | None,
    card_ci: Sequence[float] | None,
    lower_is_better: bool = False,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "metric": metric,
        "site": site,
        "site_ci95": list(site_ci) if site_ci else None,
        "card": card,
        "card_ci95": list(card_ci) if card_ci else None,
        "difference": None if site is None or card is None else site - card,
        "lower_is_better": lower_is_better,
        "verdict": NO_FIGURE,
    }
    if site is None or card is None:
        return row
    sign = -1.0 if lower_is_better else 1.0  # positive shortfall: the site is worse
    shortfall = sign * (card - site)
    beyond_card = card_ci is not None and (
        site > card_ci[1] if lower_is_better else site < card_ci[0]
    )
    worse = shortfall > MARGIN + 1e-12 or (beyond_card and shortfall > 0)
    clearly = site_ci is not None and (site_ci[0] > card if lower_is_better else site_ci[1] < card)
    row["verdict"] = (CLEARLY_WORSE if clearly else WORSE) if worse else NOT_WORSE
    return row


def _card_figures(test: dict[str, Any], class_ids: Sequence[str]) -> dict[str, tuple]:
    """(value, interval) of each compared figure on the card, None where it has none."""
    out: dict[str, tuple] = {}
    cm = np.array(test.get("confusion_matrix") or [], dtype=np.int64)
    has_cm = cm.shape == (len(class_ids), len(class_ids))
    total = int(cm.sum()) if has_cm else 0
    acc_ci = test.get("accuracy_ci95")
    if acc_ci is None and has_cm:
        acc_ci = wilson_interval(int(np.trace(cm)), total)
    out["accuracy"] = (test.get("accuracy"), acc_ci)
    out["auc"] = (test.get("macro_auc"), test.get("macro_auc_ci95"))
    per_class = test.get("per_class") or {}
    for i, cid in enumerate(class_ids):
        stored = per_class.get(cid) or {}
        sens = spec = sens_ci = spec_ci = None
        if has_cm:
            positives, negatives = int(cm[i].sum()), total - int(cm[i].sum())
            tn = negatives - int(cm[:, i].sum() - cm[i, i])
            sens = cm[i, i] / positives if positives else None
            spec = tn / negatives if negatives else None
            sens_ci = wilson_interval(int(cm[i, i]), positives)
            spec_ci = wilson_interval(tn, negatives)
        out[f"sensitivity {cid}"] = (stored.get("recall", sens), stored.get("recall_ci95", sens_ci))
        out[f"specificity {cid}"] = (None if spec is None else float(spec), spec_ci)
        out[f"auc {cid}"] = (stored.get("auc"), stored.get("auc_ci95"))
    return out
