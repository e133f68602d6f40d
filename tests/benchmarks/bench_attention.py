"""Issue 27 item 3's measure: how often the attention check (evidence outside the lungs) fires.

    python tests/benchmarks/bench_attention.py [--per-pool 300] [--models chest-3class,...]

Per bundled model: a seeded sample of each pool's test-split films (in-source: the
model's own split.csv) and of every pool the model never trained on (held-out), each
classified by ``TrustCheck`` as the viewer and the CLI do. For each image: the share of
the predicted class's CAM mass inside the lung fields (``trust.attention``), the shortcut
audit's central lung box for comparison, whether the answer was right, and whether the
other checks (gate, OOD, the card's operating rule) already flagged or withheld it.
Printed: the share of films the check fires on at several thresholds, per pool, with the
accuracy of the films it fires on and of the rest; the share of in-source test films
flagged or indeterminate with and without it; the SIIM sample's verdict (its "Normal"
map sat on the burnt-in "L" marker); and the time the check adds to one image, as a
ratio to the single-image time (load, classify, gate, OOD, verdict) in the same run.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_trust import median_ms  # noqa: E402
from tests.benchmarks.machine import cpu_name  # noqa: E402
from xraydesk.classifier import Classifier  # noqa: E402
from xraydesk.imaging.loader import load_xray  # noqa: E402
from xraydesk.trust.attention import MIN_LUNG_SHARE, lung_share, lung_shares  # noqa: E402
from xraydesk.trust.check import TrustCheck  # noqa: E402
from xraydesk.trust.codes import EVIDENCE_OUTSIDE_LUNGS  # noqa: E402

THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35)
POOLS = ("kermany-pediatric", "covid19-radiography", "ozturk-nih", "covid-cxnet")
PNEUMONIA = ("pneumonia", "bacterial", "viral")  # the pediatric model's classes on adult pools
LABEL_MAP = {"bacterial": "pneumonia", "viral": "pneumonia"}
SIIM = Path("samples/dicom/siim-cr-jpeg-baseline.dcm")


def audit_box(size: int) -> np.ndarray:
    """The shortcut audit's lung region (trainer.shortcut_audit.AuditRegions, numpy)."""
    pos = (np.arange(size) + 0.5) / size
    rows, cols = pos[:, None], pos[None, :]
    inner = (rows >= 0.12) & (rows < 0.88) & (cols >= 0.15) & (cols < 0.85)
    near = ((rows < 0.18) | (rows >= 0.82)) & ((cols < 0.18) | (cols >= 0.82))
    edge = (rows < 0.06) | (rows >= 0.94) | (cols < 0.06) | (cols >= 0.94)
    return inner & ~near & ~edge


def films(data: Path, model: str, per_pool: int, seed: int) -> dict[str, list[tuple[Path, str]]]:
    """Per pool: (path, label) of a seeded sample; "in" pools from the model's test split."""
    rows = list(csv.DictReader((ROOT / "models" / model / "split.csv").open()))
    trained = {r["source"] for r in rows}
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[Path, str]]] = {}
    for pool in POOLS:
        if pool in trained:
            mine = [(data / r["path"], r["label"]) for r in rows if r["split"] == "test"]
            mine = [m for m in mine if m[0].parts[-3] == pool]
            key = f"in-source  {pool}"
        else:
            manifest = csv.DictReader((data / pool / "manifest.csv").open())
            mine = [
                (data / pool / r["path"], LABEL_MAP.get(r["label"], r["label"])) for r in manifest
            ]
            key = f"held-out   {pool}"
        pick = rng.choice(len(mine), min(per_pool, len(mine)), replace=False)
        out[key] = [mine[i] for i in sorted(pick)]
    return out


def measure(check: TrustCheck, items: list[tuple[Path, str]]) -> dict[str, np.ndarray]:
    classifier = check.classifier
    box = audit_box(classifier.preprocessing.size)
    share, boxed, right, other, corner = [], [], [], [], []
    for path, label in items:
        result = check.classify(load_xray(path), activations=True)
        forward = result.forward
        probs = np.asarray([list(result.prediction.probabilities.values())])
        share.append(lung_shares(classifier, forward.activations, probs)[0])
        small = classifier.class_maps(forward.activations, probs.argmax(axis=1))[0]
        boxed.append(lung_share(small, box))
        row, col = np.unravel_index(small.argmax(), small.shape)
        corner.append(row in (0, small.shape[0] - 1) and col in (0, small.shape[1] - 1))
        said = result.prediction.predicted
        right.append(said == label or (label == "pneumonia" and said in PNEUMONIA))
        # flagged or withheld by another check: every withholding check leaves a code
        other.append(any(c != EVIDENCE_OUTSIDE_LUNGS for c in result.codes))
    names = ("share", "box", "right", "other", "corner")
    values = (share, boxed, right, other, corner)
    return {k: np.asarray(v) for k, v in zip(names, values, strict=True)}


def report(name: str, m: dict[str, np.ndarray]) -> None:
    share, right = m["share"], m["right"]
    valid = np.isfinite(share)
    cells = []
    for t in THRESHOLDS:
        fire = valid & (share < t)
        cells.append(f"{fire.mean():6.1%}")
    fire = valid & (share < MIN_LUNG_SHARE)
    acc_fire = f"{right[fire].mean():.2f}" if fire.any() else "  - "
    acc_rest = f"{right[~fire].mean():.2f}" if (~fire).any() else "  - "
    both = (m["other"] | fire).mean()
    print(
        f"  {name:34s} n={len(share):4d} share median {np.nanmedian(share):.2f} "
        f"(box {np.nanmedian(m['box']):.2f}) | fires at {' '.join(cells)} | "
        f"acc fired {acc_fire} rest {acc_rest} | other checks {m['other'].mean():5.1%}, "
        f"with this {both:5.1%} | map peaks in a corner cell {m['corner'].mean():5.1%}"
    )


def timing(check: TrustCheck, paths: list[Path], rounds: int = 3) -> None:
    """The check's added time per image against the single-image time, same run.

    The forward pass with and without keeping the activations is timed in pairs, in
    alternating order (a loaded machine drifts between two separate loops); the check
    adds that difference (a copy of the last stage) plus the lung share itself."""
    classifier = check.classifier
    xrays = [load_xray(p) for p in paths]
    for x in xrays[:3]:  # warm-up
        check.classify(x)
    single = median_ms(lambda p: check.classify(load_xray(p)), paths)
    tensors = [classifier.preprocess(x)[None] for x in xrays]
    differences, plain = [], []
    for k in range(rounds * len(tensors)):
        t = tensors[k % len(tensors)]
        order = (False, True) if k % 2 else (True, False)
        took = {}
        for keep in order:
            begin = time.perf_counter()
            classifier.forward(t, activations=keep)
            took[keep] = time.perf_counter() - begin
        differences.append((took[True] - took[False]) * 1000)
        plain.append(took[False] * 1000)
    outs = [classifier.forward(t, activations=True) for t in tensors]

    def attention(out) -> None:
        lung_shares(classifier, out.activations, classifier.probabilities(out.logits))

    added = median_ms(attention, outs)
    copy = max(0.0, statistics.median(differences))
    extra = copy + added
    print(
        f"  time per image ({classifier.device.label}): single image {single:.1f} ms "
        f"(load, classify, gate, OOD, verdict); forward {statistics.median(plain):.1f} ms, "
        f"keeping the activations adds {statistics.median(differences):+.2f} ms (median of "
        f"{len(differences)} interleaved pairs); lung share {added:.2f} ms; added "
        f"{extra:.2f} ms = {extra / single:.1%} of the single-image time"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--models", default="chest-3class,pediatric-pneumonia")
    parser.add_argument("--per-pool", type=int, default=300)
    parser.add_argument("--timing-images", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; lung share threshold {MIN_LUNG_SHARE}")
    print(f"  thresholds: {' '.join(f'{t:6.2f}' for t in THRESHOLDS)}")
    for model in args.models.split(","):
        start = time.perf_counter()
        classifier = Classifier.load(ROOT / "models" / f"{model}.json", device="cpu")
        check = TrustCheck.of(classifier)
        print(f"{model} ({classifier.device.label})")
        groups = films(args.data, model, args.per_pool, args.seed)
        inside = []
        for name, items in groups.items():
            m = measure(check, items)
            report(name, m)
            if name.startswith("in-source"):
                inside.append(m)
        if inside:
            both = {k: np.concatenate([m[k] for m in inside]) for k in inside[0]}
            report("in-source, all pools", both)
        siim = check.classify(load_xray(args.data / SIIM), activations=True)
        probs = np.asarray([list(siim.prediction.probabilities.values())])
        share = lung_shares(classifier, siim.forward.activations, probs)[0]
        print(
            f"  SIIM sample: {siim.prediction.predicted} {siim.prediction.confidence:.1%}, "
            f"lung share {share:.2f}, codes {siim.codes}"
        )
        sample = films(args.data, model, args.timing_images, args.seed + 1)
        timing(check, [p for items in sample.values() for p, _ in items][: args.timing_images])
        print(f"  {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
