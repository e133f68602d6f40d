"""``xraydesk models``: list the available models."""

from __future__ import annotations

import argparse
import json

from xraydesk.model.library import DEFAULT_MODEL, list_models


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list the available models")
    parser.add_argument("--json", action="store_true", help="one JSON object per model")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cards = list_models()
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
                    }
                )
            )
        return 0
    if not cards:
        print("No models installed. Train one with `xraydesk train`.")
        return 0
    rows = [("NAME", "VERSION", "SOURCE", "CLASSES")]
    for card in cards:
        default = " (default)" if card.name == DEFAULT_MODEL and card.source == "bundled" else ""
        classes = ", ".join(c.name for c in card.classes)
        rows.append((card.name + default, card.version, card.source, classes))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
            + "  "
            + row[3]
        )
    return 0
