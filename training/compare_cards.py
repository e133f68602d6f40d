"""Does a newly trained model beat the shipped one? Two cards side by side, per pool.

    python training/compare_cards.py models/chest-3class.json CANDIDATE/chest-3class.json

Why: issue 25 ships chest-3class 2.0 and pediatric-pneumonia 1.1 only when they beat the
shipped 1.1 and 1.0 on the internal test split (both) and on held-out sources (chest)
without losing elsewhere. The figures are in each card (``metrics.test`` and its
``per_source``, the shortcut audit, the held-out table); this script puts them in one
table, with the difference, and says whether both cards were tested on the same films
(their ``NAME/split.csv`` test rows): figures from two different test splits are not a
comparison, and the script says so instead of a verdict. The CPU does not matter.

A row is "worse" when the candidate loses more than ``TOLERANCE`` on a figure where
higher is better (ECE: lower is better). The verdict "beats" needs the same test films,
no worse row, and at least one row better by more than the tolerance.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOLERANCE = 0.005  # differences this small are noise on ~2,800 test films


@dataclass(frozen=True)
class Row:
    label: str
    old: float | None
    new: float | None
    higher_is_better: bool = True

    @property
    def change(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    @property
    def judged(self) -> str:
        change = self.change
        if change is None:
            return "-"
        gain = change if self.higher_is_better else -change
        return "better" if gain > TOLERANCE else "worse" if gain < -TOLERANCE else "same"


def at(metrics: dict[str, Any] | None, dotted: str) -> float | None:
    """``metrics["a"]["b"]`` for ``"a.b"``; None when any part is missing."""
    value: Any = metrics
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def test_films(card_path: Path) -> frozenset[str] | None:
    """The card's test split as relative paths (``NAME/split.csv`` beside the card)."""
    split = card_path.with_suffix("") / "split.csv"
    if not split.is_file():
        return None
    with open(split, newline="", encoding="utf-8") as handle:
        return frozenset(r["path"] for r in csv.DictReader(handle) if r.get("split") == "test")


def figure(metrics: dict[str, Any] | None, dotted: str) -> float | None:
    """``at``, except a class's recall on test films holding none of that class (a
    pool's 0.000 "normal recall" where the pool has no normal film) is no figure."""
    if dotted.startswith("per_class.") and dotted.endswith(".recall"):
        support = at(metrics, dotted.rsplit(".", 1)[0] + ".support")
        if not support:
            return None
    return at(metrics, dotted)


def figures(classes: list[str]) -> list[tuple[str, str, bool]]:
    """(label, dotted path in a test-metrics dict, higher is better) for these classes."""
    rows = [
        ("accuracy", "accuracy", True),
        ("balanced accuracy", "balanced_accuracy", True),
        ("macro AUROC", "macro_auc", True),
        ("ECE", "ece", False),
    ]
    rows += [(f"{c} recall", f"per_class.{c}.recall", True) for c in classes]
    pairs = [(a, b) for i, a in enumerate(classes) for b in classes[i + 1 :]]
    rows += [(f"{a} vs {b} AUROC", f"pairwise_auc.{a}_vs_{b}", True) for a, b in pairs]
    return rows


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Row]]:
    """Rows per section: "all test films", each pool's, the shortcut audit, held out."""
    classes = [c["id"] if isinstance(c, dict) else str(c) for c in new.get("classes", [])]
    old_m, new_m = old.get("metrics", {}), new.get("metrics", {})
    sections: dict[str, list[Row]] = {}

    def section(name: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> None:
        rows = [Row(lbl, figure(a, p), figure(b, p), up) for lbl, p, up in figures(classes)]
        sections[name] = [r for r in rows if r.old is not None or r.new is not None]

    section("all test films", old_m.get("test"), new_m.get("test"))
    pools = sorted(
        set(old_m.get("test", {}).get("per_source", {}))
        | set(new_m.get("test", {}).get("per_source", {}))
    )
    for pool in pools:
        section(
            f"test films of {pool}",
            old_m.get("test", {}).get("per_source", {}).get(pool),
            new_m.get("test", {}).get("per_source", {}).get(pool),
        )
    audit = [
        ("accuracy, borders and corners masked", "shortcut_audit.accuracy_masked", True),
        ("accuracy lost when masked", "shortcut_audit.accuracy_drop", False),
        ("heat-map share in the lung box", "shortcut_audit.cam_share.lung", True),
    ]
    sections["shortcut audit"] = [
        Row(label, at(old_m, p), at(new_m, p), up) for label, p, up in audit
    ]
    held = sorted(
        set(old_m.get("held_out_sources", {}).get("sources", {}))
        | set(new_m.get("held_out_sources", {}).get("sources", {}))
    )
    sections["held-out sources (accuracy)"] = [
        Row(
            pool,
            at(old_m, f"held_out_sources.sources.{pool}.accuracy"),
            at(new_m, f"held_out_sources.sources.{pool}.accuracy"),
        )
        for pool in held
    ]
    return sections


def verdict(sections: dict[str, list[Row]], same_films: bool | None) -> str:
    if not same_films:
        return (
            "no verdict: the two cards were not tested on the same films"
            if same_films is False
            else "no verdict: a card's test split (NAME/split.csv) is missing"
        )
    rows = [r for rows in sections.values() for r in rows]
    worse = [r.label for r in rows if r.judged == "worse"]
    if worse:
        return f"does not beat: worse on {len(worse)} figure(s)"
    if any(r.judged == "better" for r in rows):
        return "beats: better on at least one figure, worse on none"
    return "no better: every figure within the tolerance"


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render(
    old: dict[str, Any], new: dict[str, Any], sections: dict[str, list[Row]], same: bool | None
) -> str:
    lines = [
        f"old: {old.get('name')} {old.get('version')}; new: {new.get('name')} {new.get('version')}",
        "same test films: " + {True: "yes", False: "NO", None: "unknown"}[same],
        f"(a difference within {TOLERANCE} is 'same'; ECE and the masked loss: lower is better)",
    ]
    for name, rows in sections.items():
        if not rows:
            continue
        lines += ["", f"| {name} | old | new | change | |", "| --- | --- | --- | --- | --- |"]
        for r in rows:
            change = "-" if r.change is None else f"{r.change:+.3f}"
            lines.append(f"| {r.label} | {cell(r.old)} | {cell(r.new)} | {change} | {r.judged} |")
    targets = new.get("metrics", {}).get("targets", [])
    if targets:
        lines += ["", "the new card's recipe targets (internal test split):"]
        for t in targets:
            value = "-" if t.get("value") is None else f"{t['value']:.3f}"
            state = "met" if t.get("met") else "MISSED"
            lines.append(f"  {t.get('label')}: {value} (at least {t.get('at_least')}) {state}")
    lines += ["", "verdict: " + verdict(sections, same)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the shipped card, e.g. models/chest-3class.json")
    parser.add_argument("new", type=Path, help="the candidate's card")
    args = parser.parse_args(argv)
    cards = []
    for path in (args.old, args.new):
        try:
            cards.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read the card ({exc})", file=sys.stderr)
            return 2
    old_films, new_films = test_films(args.old), test_films(args.new)
    same = None if old_films is None or new_films is None else old_films == new_films
    print(render(cards[0], cards[1], compare(cards[0], cards[1]), same))
    return 0


if __name__ == "__main__":
    sys.exit(main())
