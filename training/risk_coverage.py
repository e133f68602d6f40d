"""Risk-coverage of held-out-source predictions: how accurate the answered images are when
the model answers only above a confidence.

    python training/risk_coverage.py HELD_OUT_FOLDER [--json OUT.json]

HELD_OUT_FOLDER is a leave-one-source-out work folder (one sub-folder per held-out pool,
each with the ``predictions.npz`` that ``xraydesk.trainer.held_out`` keeps). Why held-out
sources: a confidence threshold chosen on the internal split answers nearly everything,
because the model is sure of hospitals it has seen; on a hospital it has not seen, the
same threshold is what an "indeterminate" operating rule has to be judged by.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

PREDICTIONS_FILE = "predictions.npz"  # as xraydesk.trainer.held_out writes it
THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
COVERAGES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def confidences(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def risk_coverage(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, Any]:
    """Accuracy of the answered images at fixed thresholds and at fixed coverages."""
    probs = confidences(np.asarray(logits, dtype=np.float64), float(temperature))
    top = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    n = len(labels)
    by_threshold = []
    for t in THRESHOLDS:
        answered = top >= t
        k = int(answered.sum())
        by_threshold.append(
            {
                "threshold": t,
                "coverage": k / n if n else 0.0,
                "accuracy": float(right[answered].mean()) if k else None,
                "wrong_confident_share": float((~right & (top >= 0.9) & answered).sum() / n)
                if n
                else 0.0,
            }
        )
    order = np.argsort(-top, kind="stable")
    by_coverage = []
    for c in COVERAGES:
        k = max(1, round(c * n)) if n else 0
        chosen = order[:k]
        by_coverage.append(
            {
                "coverage": c,
                "threshold": float(top[chosen[-1]]) if k else None,
                "accuracy": float(right[chosen].mean()) if k else None,
            }
        )
    return {"n": n, "by_threshold": by_threshold, "by_coverage": by_coverage}


def folder_table(folder: Path) -> dict[str, Any]:
    """Per held-out pool, the risk-coverage of its predictions (pools without any skipped)."""
    table = {}
    for pool in sorted(p for p in folder.iterdir() if (p / PREDICTIONS_FILE).is_file()):
        data = np.load(pool / PREDICTIONS_FILE)
        table[pool.name] = risk_coverage(data["logits"], data["labels"], data["temperature"])
    return table


def render(table: dict[str, Any]) -> str:
    lines = ["pool                    n      " + "  ".join(f"cov {c:.0%}" for c in COVERAGES)]
    for pool, rc in table.items():
        cells = "  ".join(
            f"{row['accuracy']:.3f}  " if row["accuracy"] is not None else "  -     "
            for row in rc["by_coverage"]
        )
        lines.append(f"{pool:22s} {rc['n']:6d}  {cells}")
    lines.append("(accuracy of the most confident share of each held-out pool)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"risk_coverage: {args.folder} is not a folder", file=sys.stderr)
        return 2
    table = folder_table(args.folder)
    if not table:
        print(f"risk_coverage: no {PREDICTIONS_FILE} under {args.folder}", file=sys.stderr)
        return 1
    print(render(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
