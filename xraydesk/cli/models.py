"""``xraydesk models``: list the available models; rename or delete the user's own.

Bundled models are read-only: renaming or deleting one is refused by the library.
"""

from __future__ import annotations

import argparse
import json
import sys

from xraydesk.cli import models_profile
from xraydesk.model.library import (
    DEFAULT_MODEL,
    delete_user_model,
    list_models,
    rename_user_model,
    skipped_cards,
    user_model,
)
from xraydesk.printable import printable
from xraydesk.trainer.metrics import format_with_interval, headline_metrics


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "models",
        help="list the available models; rename or delete your own",
        description="Without an action: list the bundled models and your model library.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per model")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    rename = actions.add_parser("rename", help="rename a model in your library")
    rename.add_argument("old", metavar="OLD")
    rename.add_argument("new", metavar="NEW")
    rename.set_defaults(run=run_rename)
    delete = actions.add_parser("delete", help="delete a model from your library")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=run_delete)
    models_profile.register(actions)
    parser.set_defaults(run=run)


def run_rename(args: argparse.Namespace) -> int:
    card = rename_user_model(args.old, args.new)
    print(f"Renamed {args.old} to {card.name} ({card.path})")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    card = user_model(args.name)  # refuses bundled and unknown names with a clear message
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                f"xraydesk: not deleting {args.name} without confirmation; pass --yes",
                file=sys.stderr,
            )
            return 2
        answer = input(f"Delete model {card.label} ({card.path})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 0
    delete_user_model(args.name)
    print(f"Deleted {card.label} ({card.path})")
    return 0


def run(args: argparse.Namespace) -> int:
    cards = list_models()
    for problem in skipped_cards():  # named, never fatal: the other models still list
        print(f"xraydesk: skipped {problem}", file=sys.stderr)
    if args.json:
        for card in cards:
            print(
                json.dumps(
                    {
                        "name": card.name,
                        "version": card.version,
                        "source": card.source,
                        "classes": card.class_ids,
                        "path": str(card.path),
                        "verified": card.verified,
                        "test": headline_metrics(card.metrics.get("test") or {}),
                        "population": card.population.to_dict(),
                        "site_profile": models_profile.profile_text(card),
                        "operating_rule": (
                            card.operating_rule.to_dict() if card.operating_rule else None
                        ),
                        "class_groups": [g.to_dict() for g in card.class_groups],
                    }
                )
            )
        return 0
    if not cards:
        print("No models installed. Train one with `xraydesk train`.")
        return 0
    rows = [("NAME", "VERSION", "SOURCE", "TEST ACCURACY", "CLASSES")]
    for card in cards:
        default = " (default)" if card.name == DEFAULT_MODEL and card.source == "bundled" else ""
        default += "" if card.verified else " (card unverified: made before integrity hashes)"
        classes = ", ".join(c.name for c in card.classes)
        cells = (card.name + default, card.version, card.source, _accuracy(card), classes)
        rows.append(tuple(printable(c) for c in cells))  # a card is a file: names are text
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
            + "  "
            + row[4]
        )
    for card in cards:
        if card.operating_rule is not None:  # the site profile's rule below replaces it
            print(f"{printable(card.name)}: {printable(card.operating_rule.summary)}")
        for group in card.class_groups:  # what a withheld answer still names
            members = group.members(card.display_names, " + ")
            print(
                f"{printable(card.name)}: withheld, it still names {printable(group.name)} "
                f"when {printable(members)} pass the rule together"
            )
        line = models_profile.profile_text(card)
        if line:
            print(f"{printable(card.name)}: {printable(line)}")
    return 0


def _accuracy(card) -> str:
    """Test accuracy with its 95 % interval and n, flagged when the test split is small."""
    head = headline_metrics(card.metrics.get("test") or {})
    if head["accuracy"] is None:
        return "-"
    text = format_with_interval(head["accuracy"], head["accuracy_ci95"], percent=True)
    return f"{text}, n={head['n']}" + (" (small test)" if head["small"] else "")
