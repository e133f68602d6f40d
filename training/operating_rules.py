"""Give a model card its operating rule and its temperature under shift.

    python training/operating_rules.py models/chest-3class.json \
        --held-out ~/.cache/xraydesk/campaign/work/chest-held-out-base/chest-3class/held-out \
        --data ../shared/data

The card's validation split (``NAME/split.csv`` beside it) is classified by the app's
own classifier; the held-out folder's ``POOL/predictions.npz`` (the leave-one-source-out
runs of ``xraydesk.trainer.held_out``; none is fine) give the held-out sources. Then
``trainer.operating_choice`` fits the temperature under shift and chooses the rule, the
card is rewritten (with its Markdown when the recipe is known) and, for a card in models/,
the program's record of the bundled cards is renewed (``xraydesk.model.anchor``).
``training/train_bundled.py`` runs the same after every bundled training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from xraydesk.classifier import Classifier  # noqa: E402
from xraydesk.model import anchor  # noqa: E402
from xraydesk.model.card import ModelCard  # noqa: E402
from xraydesk.model.probabilities import softmax  # noqa: E402
from xraydesk.trainer.batches import batch_iterator  # noqa: E402
from xraydesk.trainer.operating_choice import (  # noqa: E402
    MAX_ERROR,
    choose_rule,
    held_out_pools,
    shift_temperature,
)
from xraydesk.trainer.split import SPLIT_FILE, read_split  # noqa: E402
from xraydesk.trust.calibration import add_calibration_limitations  # noqa: E402
from xraydesk.trust.group_answer import group_figures  # noqa: E402


def split_logits(
    card_path: Path, split_csv: Path, split: str, data: Path | None, device: str, batch: int = 64
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw logits, labels and pools of one split's readable images, through the app's own
    classifier (the shipped weights and runtime); relative paths resolve against ``data``."""
    classifier = Classifier.load(card_path, device=device)
    samples, splits = read_split(split_csv)
    if data is not None:
        samples = [
            s if s.path.is_absolute() else dataclasses.replace(s, path=data / s.path)
            for s in samples
        ]
    chosen = [i for i, sp in enumerate(splits) if sp == split]
    ids = classifier.class_ids
    y = np.array([ids.index(samples[i].label) for i in chosen], dtype=np.int64)
    batches = [chosen[k : k + batch] for k in range(0, len(chosen), batch)]
    logits, ok = [], []
    for b in batch_iterator(samples, batches, classifier.preprocessing, pad_to=batch):
        logits.append(classifier.logits(b.inputs)[: len(b.ok)])
        ok.extend(b.ok)
    mask = np.asarray(ok, dtype=bool)
    out = np.concatenate(logits)[mask] if logits else np.zeros((0, len(ids)))
    pools = [samples[i].source for i, good in zip(chosen, mask, strict=True) if good]
    return out.astype(np.float64), y[mask], pools


def validation_temperature(card: ModelCard) -> float:
    """The temperature fitted on the validation split (a card already given a shift
    temperature keeps it in its account)."""
    shift = card.metrics.get("calibration_under_shift") or {}
    return float(shift.get("validation_temperature", card.temperature))


def apply_operating_rule(
    card_path: Path,
    held_out: Sequence[Path] | Path | None,
    data: Path | None,
    device: str = "cpu",
    max_error: float = MAX_ERROR,
    cache: Path | None = None,
) -> ModelCard:
    """Choose the card's rule and temperature under shift and rewrite the card."""
    card = ModelCard.read(card_path)
    cached = cache / f"{card.name}-validation.npz" if cache is not None else None
    if cached is not None and cached.is_file():
        with np.load(cached) as saved:
            logits, labels, pools = saved["logits"], saved["labels"], list(saved["pools"])
    else:
        split_csv = card_path.with_suffix("") / SPLIT_FILE
        logits, labels, pools = split_logits(card_path, split_csv, "val", data, device)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(cached, logits=logits, labels=labels, pools=np.array(pools))
    folders = [held_out] if isinstance(held_out, Path) else list(held_out or [])
    held = held_out_pools(folders, card.class_ids)
    t_val = validation_temperature(card)
    temperature, account = shift_temperature(held, t_val, (logits, labels))
    if temperature != t_val:
        account["note"] = "the test metrics above were computed at the validation temperature"
    names = sorted(set(pools))
    card.temperature = temperature
    card.operating_rule = choose_rule(
        held, (logits, labels, temperature, names), account["factor_applied"], max_error
    )
    card.metrics["calibration_under_shift"] = account
    if card.class_groups:  # what a withheld answer can still name (trust.group_answer)
        card.metrics["class_groups"] = {
            "validation_split": group_figures(card, softmax(logits, temperature), labels)
        }
    add_calibration_limitations(card.limitations, card.metrics)
    card.write(card_path)
    anchor.refresh_if_shipped(card_path.parent)
    recipe_path = HERE / "configs" / f"{card.name}.json"
    if recipe_path.is_file() and data is not None:
        from model_card_md import render_model_card

        recipe: dict[str, Any] = json.loads(recipe_path.read_text())
        card_path.with_suffix(".md").write_text(
            render_model_card(ModelCard.read(card_path), recipe, data)
        )
    return ModelCard.read(card_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card", type=Path)
    parser.add_argument(
        "--held-out", type=Path, action="append", default=[], help="leave-one-source-out folder"
    )
    parser.add_argument("--data", type=Path, help="the data folder the split is relative to")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-error", type=float, default=MAX_ERROR)
    parser.add_argument("--cache", type=Path, help="keep the validation logits here")
    args = parser.parse_args(argv)
    card = apply_operating_rule(
        args.card, args.held_out, args.data, args.device, args.max_error, args.cache
    )
    rule = card.operating_rule
    print(f"{card.label}: temperature {card.temperature:.4g}")
    print(f"  {rule.line if rule else 'no rule'}")
    for pool, row in (rule.held_out if rule else {}).items():
        print(f"  held out {pool}: {json.dumps(row)}")
    print(json.dumps(card.metrics["calibration_under_shift"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
