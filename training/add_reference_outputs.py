"""Give model cards made before reference outputs existed their weights' outputs on the
probe images, so their exported graphs are checked without torch.

    python training/add_reference_outputs.py models/chest-3class.json [CARD ...]

Cards saved by ``model.saving.save_model`` (every training run since) have them already.
The weights are read from the card's checked file, so the outputs are those of the weights
that ship. After changing a bundled card, run ``python -m xraydesk.model.anchor``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xraydesk.model.card import ModelCard
from xraydesk.model.card_file import meaning_fields, meaning_hash
from xraydesk.model.reference_outputs import reference_outputs
from xraydesk.model.saving import load_network


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cards", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.cards:
        data = json.loads(path.read_text(encoding="utf-8"))
        card = ModelCard.from_dict(data, path=path)  # checked: hash, anchor, weights entry
        card.reference_outputs = reference_outputs(load_network(card), card.preprocessing)
        if card.reference_outputs is None:
            print(f"{path}: its outputs on the probes are not finite; not changed", file=sys.stderr)
            continue
        data["reference_outputs"] = card.reference_outputs.to_dict()
        data["integrity"] = {"covers": meaning_fields(data), "sha256": meaning_hash(data)}
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{path}: reference outputs saved", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
