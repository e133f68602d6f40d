"""The lung-field prior of the attention check (xraydesk/trust/lung_fields.py), from the pools.

No lung masks ship with ../shared/data, so the lung fields are estimated from intensity:
on a frontal film the lungs are the two large dark regions *inside* the body, the air
outside it being dark too but lying along the film's edges. Per image (rendered, resized
to 64 px, histogram-equalised as the bundled models' preprocessing does):

1. dark = the darkest 35 % of the smoothed pixels; an opening (two iterations) cuts thin
   bridges between the lungs and the air outside the body;
2. the outermost 3 pixels are cleared, and a dark region with more than a quarter of its
   pixels within 5 pixels of an edge is the air outside the body, not a lung;
3. of the rest, the two largest regions of at least 2 % of the film, rows wider than 40 %
   of the film removed (the air above the shoulders that joins a lung apex), holes filled.

The estimate misses some lungs (a pediatric film's ribs split them; a dense consolidation
is not dark) and sometimes leaks into the air above the shoulders, so the shipped prior is
its *frequency* over many normal training-split films of every pool: the share of films
in which each point of the normalised film (32 x 32) was estimated lung. The check uses
the points estimated lung on at least ``LEVEL`` of the films. Normal films only: disease
makes lungs less dark, which would shrink the estimate where the evidence is.

Run: python training/lung_field_prior.py [--per-pool 600] [--seed 0]
(writes xraydesk/trust/lung_prior.json and prints the figures that justify it).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xraydesk.imaging.loader import load_xray  # noqa: E402
from xraydesk.imaging.resample import resize  # noqa: E402
from xraydesk.model.preprocessing import equalize_histogram  # noqa: E402
from xraydesk.trust.lung_fields import PRIOR_FILE  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SPLIT = ROOT / "models" / "chest-3class" / "split.csv"  # every pool, patient-grouped
SIDE = 64  # where each film is estimated
GRID = 32  # the stored prior: SIDE / 2, each cell the mean of 2 x 2 estimates


def film(path: Path, side: int = SIDE) -> np.ndarray:
    """A film as the bundled models see it (rendered, resized, equalised), ``side`` px."""
    unit = np.asarray(load_xray(path).render(), np.float32)
    return equalize_histogram(np.clip(resize(unit, side, side), 0.0, 1.0))


def lung_estimate(image: np.ndarray, dark: float = 0.35) -> np.ndarray:
    """Boolean (S, S): the large dark regions inside the body of one equalised film."""
    side = image.shape[0]
    smooth = ndimage.uniform_filter(image, 3)
    mask = ndimage.binary_opening(smooth < np.quantile(smooth, dark), iterations=2)
    mask[:3], mask[-3:], mask[:, :3], mask[:, -3:] = False, False, False, False
    near = np.zeros_like(mask)
    near[:5], near[-5:], near[:, :5], near[:, -5:] = True, True, True, True
    labels, count = ndimage.label(mask)
    index = range(1, count + 1)
    sizes = np.asarray(ndimage.sum(mask, labels, index))
    edge = np.asarray(ndimage.sum(near, labels, index))
    keep = np.zeros_like(mask)
    kept = 0
    for k in np.argsort(-sizes):
        if sizes[k] < 0.02 * side * side or kept == 2:
            break
        if edge[k] > 0.25 * sizes[k]:
            continue
        region = labels == k + 1
        region[region.sum(axis=1) > 0.4 * side] = False
        parts, n = ndimage.label(region)
        if n == 0:
            continue
        region = parts == 1 + int(np.argmax(ndimage.sum(region, parts, range(1, n + 1))))
        if region.sum() >= 0.02 * side * side:
            keep |= region
            kept += 1
    return ndimage.binary_fill_holes(keep)


def normal_films(split: str, per_pool: int, seed: int) -> list[dict[str, str]]:
    """A seeded sample of at most ``per_pool`` normal films of ``split`` from each pool."""
    rows = [
        r for r in csv.DictReader(SPLIT.open()) if r["split"] == split and r["label"] == "normal"
    ]
    rng = np.random.default_rng(seed)
    out = []
    for pool in sorted({r["source"] for r in rows}):
        mine = [r for r in rows if r["source"] == pool]
        pick = rng.choice(len(mine), min(per_pool, len(mine)), replace=False)
        out += [mine[i] for i in sorted(pick)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-pool", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = normal_films("train", args.per_pool, args.seed)
    total = np.zeros((SIDE, SIDE))
    found = Counter()
    for k, row in enumerate(rows):
        estimate = lung_estimate(film(DATA / row["path"]))
        if estimate.mean() >= 0.05:  # nothing found: no vote, rather than a vote for "none"
            total += estimate
            found[row["source"]] += 1
        if k % 200 == 0:
            print(f"  {k}/{len(rows)}", flush=True)
    n = sum(found.values())
    frequency = (total / n).reshape(GRID, SIDE // GRID, GRID, SIDE // GRID).mean(axis=(1, 3))
    payload = {
        "format": "xraydesk-lung-prior/1",
        "grid": GRID,
        "frequency_percent": np.rint(frequency * 100).astype(int).tolist(),
        "films": n,
        "films_per_pool": dict(sorted(found.items())),
        "films_without_estimate": len(rows) - n,
        "source": "normal films of the chest-3class training split (models/chest-3class/"
        "split.csv), lungs estimated from intensity by training/lung_field_prior.py",
    }
    PRIOR_FILE.write_text(json.dumps(payload, indent=None, separators=(",", ":")) + "\n")
    print(f"{n} films with an estimate of {len(rows)} ({dict(found)}), {PRIOR_FILE}")
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
