"""Issue 27's measure of the indeterminate outcome: per held-out source, before and after.

    python tests/benchmarks/bench_indeterminate.py [--held-out FOLDER ...]
        [--card models/chest-3class.json] [--validation NPZ]

Each held-out source is a pool that a model of the card's recipe never saw in training
(the leave-one-source-out folders of ``xraydesk.trainer.held_out``: ``POOL/predictions.npz``
with the held-out model's logits on every image of the pool). By default every such
folder of the training campaign is read (``~/.cache/xraydesk/campaign/work/*/NAME/
held-out``, read only); more folds just add rows. Per source, three risk-coverage rows:

- before: no rule, every image answered;
- card rule: the rule the card carries (``model.operating_rule``), at the card's
  temperature factor under shift;
- other folds: a rule chosen (``trainer.operating_choice.choose_rule``) from the other
  held-out sources only, so the source it is judged on played no part in choosing it
  (the honest leave-one-source-out figure; "-" while there is no other fold).

Columns: the share of images answered, the accuracy of the answered ones, and the share
of all images answered wrongly at p >= 0.9 (from the logits alone: the input gate, OOD,
population and attention checks, which need the images, are not applied here, so
"without warning" means "not indeterminate"). ``--validation`` (an npz of the card's
validation logits and labels, as ``training/operating_rules.py --cache`` keeps them) adds
the in-source row: the share of untouched validation films the rule leaves indeterminate.
``--cross-pool POOL`` classifies a seeded sample (``--limit``) of a pool's normal and
pneumonia images with the card's model (bacterial or viral count as pneumonia): for
pediatric-pneumonia, trained on kermany-pediatric alone, the adult pools are sources it
never saw (and outside its population, which its card states).
The CPU is named with the output; the figures do not depend on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.machine import cpu_name  # noqa: E402
from xraydesk.model.card import ModelCard  # noqa: E402
from xraydesk.model.operating_rule import TOP_PROBABILITY  # noqa: E402
from xraydesk.trainer.metrics import softmax  # noqa: E402
from xraydesk.trainer.operating_choice import (  # noqa: E402
    PoolPredictions,
    choose_rule,
    held_out_pools,
    rule_effect,
)

CAMPAIGN = Path.home() / ".cache" / "xraydesk" / "campaign" / "work"


def held_out_folders(card: ModelCard) -> list[Path]:
    """The campaign's leave-one-source-out folders of the card's recipe."""
    return sorted(CAMPAIGN.glob(f"*/{card.name}/held-out"))


def cells(row: dict[str, Any] | None) -> str:
    if row is None:
        return f"{'-':>8} {'-':>8} {'-':>8}"
    accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
    return f"{row['coverage']:8.3f} {accuracy:>8} {row['wrong_confident_share']:8.3f}"


def table(card: ModelCard, pools: list[PoolPredictions]) -> list[str]:
    rule = card.operating_rule
    factor = (card.metrics.get("calibration_under_shift") or {}).get("factor_applied", 1.0)
    head = f"{'':30s}" + "".join(
        f"| {name:27s}" for name in ("before (no rule)", "card rule", "rule from other folds")
    )
    columns = f"{'answered':>8} {'accuracy':>8} {'wrong.9':>8}"
    sub = f"{'held-out source':22s} {'n':>6} " + f"| {columns} " * 3
    lines = [head, sub]
    for pool in pools:
        probs = pool.probabilities(factor)
        before = rule_effect(probs, pool.labels, TOP_PROBABILITY, 0.0)
        after = (
            None if rule is None else rule_effect(probs, pool.labels, rule.measure, rule.threshold)
        )
        others = [p for p in pools if p.pool != pool.pool]
        loso = None
        if others:
            chosen = choose_rule(others, factor=factor, max_error=rule.max_error if rule else 0.08)
            loso = rule_effect(probs, pool.labels, chosen.measure, chosen.threshold)
        lines.append(
            f"{pool.pool:22s} {len(pool.labels):6d} | {cells(before)} | {cells(after)} | "
            f"{cells(loso)}"
        )
    return lines


def in_source(card: ModelCard, npz: Path) -> str:
    rule = card.operating_rule
    with np.load(npz) as data:
        probs = softmax(data["logits"].astype(np.float64), card.temperature)
        labels = data["labels"]
    before = rule_effect(probs, labels, TOP_PROBABILITY, 0.0)
    after = None if rule is None else rule_effect(probs, labels, rule.measure, rule.threshold)
    return f"{'in-source validation':22s} {len(labels):6d} | {cells(before)} | {cells(after)} |"


# A pool's label -> the card classes that answer it rightly (pneumonia in the adult pools
# is not typed: bacterial or viral both count); other labels (covid19) are left out.
CROSS_LABELS = {"normal": ("normal",), "pneumonia": ("pneumonia", "bacterial", "viral")}


def cross_pool(card_path: Path, pool: str, data: Path, limit: int, seed: int = 0) -> str:
    """A row for a pool the card's model never saw (e.g. pediatric-pneumonia, trained on
    kermany-pediatric only, on the adult pools): the same columns, classified now."""
    from xraydesk.classifier import Classifier
    from xraydesk.trainer.batches import batch_iterator
    from xraydesk.trainer.dataset import DataSource, read_source

    classifier = Classifier.load(card_path, device="cpu")
    card, ids = classifier.card, classifier.class_ids
    source = DataSource.parse(f"{pool}={data / pool / 'manifest.csv'}")
    samples = [s for s in read_source(source) if s.label in CROSS_LABELS]
    rng = np.random.default_rng(seed)
    if len(samples) > limit:
        samples = [samples[i] for i in sorted(rng.choice(len(samples), limit, replace=False))]
    order = list(range(len(samples)))
    logits, ok = [], []
    for b in batch_iterator(
        samples,
        [order[k : k + 32] for k in range(0, len(order), 32)],
        classifier.preprocessing,
        pad_to=32,
    ):
        logits.append(classifier.logits(b.inputs)[: len(b.ok)])
        ok.extend(b.ok)
    mask = np.asarray(ok, dtype=bool)
    probs = softmax(np.concatenate(logits)[mask].astype(np.float64), card.temperature)
    kept = [s for s, good in zip(samples, mask, strict=True) if good]
    right = np.array(
        [ids[int(i)] in CROSS_LABELS[s.label] for i, s in zip(probs.argmax(1), kept, strict=True)]
    )
    # rule_effect scores argmax == label: give it labels that make "right" come out as above
    labels = np.where(right, probs.argmax(1), (probs.argmax(1) + 1) % len(ids))
    rule = card.operating_rule
    before = rule_effect(probs, labels, TOP_PROBABILITY, 0.0)
    after = None if rule is None else rule_effect(probs, labels, rule.measure, rule.threshold)
    return f"{pool + ' (cross)':22.22s} {len(kept):6d} | {cells(before)} | {cells(after)} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", type=Path, default=ROOT / "models" / "chest-3class.json")
    parser.add_argument("--held-out", type=Path, action="append", default=[])
    parser.add_argument("--validation", type=Path, help="npz of validation logits and labels")
    parser.add_argument(
        "--cross-pool",
        action="append",
        default=[],
        help="also classify this pool (normal and pneumonia images) with the card's model",
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=400, help="images per cross pool")
    args = parser.parse_args(argv)
    card = ModelCard.read(args.card)
    given = held_out_folders(card) + args.held_out
    folders = list({folder.resolve(): folder for folder in given}.values())  # each once
    pools = held_out_pools(folders, card.class_ids)  # a pool in several: the last folder's
    print(f"{card.label}; CPU: {cpu_name()} (shared with a background training run)")
    rule = card.operating_rule
    print(f"card rule: {rule.line if rule else 'none'}")
    print(f"held-out folders: {', '.join(map(str, folders)) or 'none'}")
    if not pools:
        print("no held-out predictions found")
    lines = table(card, pools)
    if args.validation is not None and args.validation.is_file():
        lines.append(in_source(card, args.validation))
    for pool in args.cross_pool:
        lines.append(cross_pool(args.card, pool, args.data, args.limit))
    print("\n".join(lines))
    print(
        "answered: share of images given a class; accuracy: of the answered images; "
        "wrong.9: share of all images answered wrongly at p >= 0.9 (logits only: no "
        "gate, OOD, population or attention warning applied)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
