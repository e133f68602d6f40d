"""Out-of-distribution statistics and per-pool calibration notes for the bundled models.

The trainer stores both in every card it makes (xraydesk/trainer/ood_stats.py); the
bundled models were trained before that existed, so this script adds them from what is
shipped: the saved split (models/NAME/split.csv) and the shipped float16 weights. The
pooled penultimate features of a stated sample of the training split give the class
means and the shared covariance; all of the validation split gives the threshold (its
97th percentile, ood.PASS_QUANTILE). Per-pool calibration comes from the card's own
test evaluation of the shipped weights (metrics.test.per_source, computed on the saved test split by
train_bundled.py); pools whose ECE is much larger than the overall one are named in the
limitations. The card is rewritten through ModelCard.write (integrity hash unchanged:
none of the fields it covers changes) and its .md regenerated.

Run: python training/trust_stats.py [--train-sample 3000] [NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xraydesk.classifier import Classifier  # noqa: E402
from xraydesk.imaging.loader import load_xray  # noqa: E402
from xraydesk.model.card import ModelCard  # noqa: E402
from xraydesk.trust.calibration import add_calibration_limitations  # noqa: E402
from xraydesk.trust.ood import fit  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BUNDLED = ("chest-3class", "pediatric-pneumonia")


def features(classifier: Classifier, paths: list[str], batch: int = 32) -> np.ndarray:
    """Pooled features of each image, through the same preprocessing as at run time."""
    out = []
    for k in range(0, len(paths), batch):
        inputs = torch.stack(
            [classifier.preprocess(load_xray(DATA / p)) for p in paths[k : k + batch]]
        )
        out.append(classifier.logits_and_features(inputs)[1])
        if k % (batch * 20) == 0:
            print(f"    {k + len(inputs)}/{len(paths)}", flush=True)
    return np.concatenate(out)


def recompute(name: str, sample: int, seed: int) -> None:
    start = time.perf_counter()
    card_path = ROOT / "models" / f"{name}.json"
    card = ModelCard.read(card_path, source="bundled")
    classifier = Classifier.load(card, device="cpu")
    rows = list(csv.DictReader((ROOT / "models" / name / "split.csv").open()))
    index = {cid: k for k, cid in enumerate(card.class_ids)}
    train = [r for r in rows if r["split"] == "train"]
    rng = np.random.default_rng(seed)
    if len(train) > sample:
        train = [train[i] for i in sorted(rng.choice(len(train), sample, replace=False))]
    val = [r for r in rows if r["split"] == "val"]
    print(f"{name}: {len(train)} training images (sample), {len(val)} validation", flush=True)
    train_f = features(classifier, [r["path"] for r in train])
    val_f = features(classifier, [r["path"] for r in val])
    labels = np.array([index[r["label"]] for r in train])
    stats = fit(train_f, labels, val_f, len(card.class_ids))
    stats.details["computed"] = (
        f"training/trust_stats.py from models/{name}/split.csv and the shipped weights; "
        f"training split sample of {len(train)} (seed {seed}), all {len(val)} validation "
        "images"
    )
    stats.store(card)
    add_calibration_limitations(card.limitations, card.metrics)
    card.write(card_path)
    subprocess.run(
        [sys.executable, str(ROOT / "training" / "train_bundled.py"), name, "--cards-only"],
        check=False,
    )
    print(
        f"{name}: threshold {stats.threshold:.3f}, shrinkage {stats.details['shrinkage']}, "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=list(BUNDLED))
    ap.add_argument("--train-sample", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    for name in args.names:
        recompute(name, args.train_sample, args.seed)


if __name__ == "__main__":
    main()
