"""Issue 14's measure: how often the input gate and the OOD score flag what they should.

    python tests/benchmarks/bench_trust.py [--images 300] [--model models/chest-3class.json]

The corpus is built in memory (nothing is written): a seeded sample of the model's
test-split radiographs from ../shared/data (the gate trained on the chest-3class
*training* split only), each as it is, rotated 90/180/270 degrees, inverted, cropped to
its top-left quarter and downscaled to 32 px; plus generated noise, blank and
near-constant images, checkerboards, text pages (all with seeds the gate's training never
used), and scikit-image sample photographs the gate's training held out (astronaut, cat,
motorcycle: random crops; lfw_subset faces upscaled). "Flagged" means any warning (gate or
out-of-distribution); the gate-only and OOD-only columns split it.

Auto-orient: each rotated or inverted image the gate calls correctable is corrected in
memory and classified again; "restored" counts those whose class equals the untouched
image's. Timing: median per image, same run, of the classifier alone (preprocessing and
forward pass, batch of one) and of the trust checks it adds (thumbnail, statistics, gate
network, Mahalanobis score on features the forward pass already made).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.machine import cpu_name  # noqa: E402
from xraydesk.classifier import Classifier  # noqa: E402
from xraydesk.imaging.loader import load_xray  # noqa: E402
from xraydesk.imaging.xray import ImageMetadata, Window, XRay  # noqa: E402
from xraydesk.trust.codes import INVERTED, ROTATED  # noqa: E402
from xraydesk.trust.gate import (  # noqa: E402
    InputGate,
    image_statistics,
    unit_thumbnail,
    view_warnings,
)
from xraydesk.trust.ood import OODStatistics  # noqa: E402
from xraydesk.trust.orient import corrected  # noqa: E402

HELD_OUT = ("astronaut", "stereo_motorcycle")  # and lfw_subset faces; skimage cat is chelsea


def synthetic(unit: np.ndarray, name: str) -> XRay:
    pixels = np.asarray(unit, dtype=np.float32)
    return XRay(
        pixels=pixels,
        bits_stored=8,
        window=Window.from_range(0.0, 1.0),
        metadata=ImageMetadata(path=Path(name), format="PNG"),
    )


def with_pixels(xray: XRay, pixels: np.ndarray) -> XRay:
    return dataclasses.replace(xray, pixels=np.ascontiguousarray(pixels, dtype=np.float32))


def downscaled(xray: XRay, side: int = 32) -> XRay:
    unit = torch.from_numpy(xray.render())[None, None]
    small = F.interpolate(unit, size=(side, side), mode="bilinear", antialias=True)[0, 0]
    return synthetic(small.numpy(), "small.png")


def radiograph_kinds(xray: XRay) -> dict[str, XRay]:
    h, w = xray.shape
    return {
        "untouched": xray,
        "rotated 90": with_pixels(xray, np.rot90(xray.pixels, 1)),
        "rotated 180": with_pixels(xray, np.rot90(xray.pixels, 2)),
        "rotated 270": with_pixels(xray, np.rot90(xray.pixels, 3)),
        "inverted": dataclasses.replace(xray, inverted=not xray.inverted),
        "corner crop (1/4)": with_pixels(xray, xray.pixels[: h // 2, : w // 2]),
        "downscaled to 32 px": downscaled(xray),
    }


def text_page(rng: np.random.Generator, side: int = 400) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (side, int(side * 1.3)), int(rng.integers(200, 256)))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=int(rng.integers(9, 20)))
    y = int(rng.integers(10, 40))
    words = ["patient", "report", "the", "of", "chest", "findings", "normal", "2024", "and"]
    while y < img.height - 20:
        line = " ".join(rng.choice(words, int(rng.integers(4, 12))))
        draw.text((int(rng.integers(10, 50)), y), line, fill=int(rng.integers(0, 60)), font=font)
        y += int(rng.integers(16, 30))
    return np.asarray(img, dtype=np.float32) / 255.0


def other_kinds(count: int, seed: int) -> dict[str, list[XRay]]:
    rng = np.random.default_rng(seed)
    kinds: dict[str, list[XRay]] = {"noise": [], "blank": [], "checkerboard": [], "text page": []}
    for k in range(count):
        side = int(rng.choice([64, 224, 512]))
        noise = [
            rng.random((side, side)),
            np.clip(rng.normal(0.5, 0.2, (side, side)), 0, 1),
            (rng.random((side, side)) > 0.5).astype(np.float32),
        ][k % 3]
        kinds["noise"].append(synthetic(noise, "noise.png"))
        level = rng.random()
        blank = np.full((side, side), level) + rng.normal(0, 0.004 * (k % 2), (side, side))
        kinds["blank"].append(synthetic(np.clip(blank, 0, 1), "blank.png"))
        n = int(rng.integers(2, 20))
        yy, xx = np.mgrid[0:side, 0:side] / side
        board = ((np.floor(yy * n) + np.floor(xx * n)) % 2) * rng.uniform(0.4, 1)
        kinds["checkerboard"].append(synthetic(board, "board.png"))
        kinds["text page"].append(synthetic(text_page(rng), "page.png"))
    try:
        import skimage.data
    except ImportError:
        print("scikit-image not installed: no photographs", file=sys.stderr)
        return kinds
    kinds["photographs (held out)"] = []
    for name in HELD_OUT:
        image = getattr(skimage.data, name)()
        image = grey(image[0] if name == "stereo_motorcycle" else image)
        h, w = image.shape
        for _ in range(count // 3):
            n = int(min(h, w) * rng.uniform(0.5, 1.0))
            top, left = int(rng.integers(0, h - n + 1)), int(rng.integers(0, w - n + 1))
            crop = image[top : top + n, left : left + n]
            kinds["photographs (held out)"].append(synthetic(crop, f"{name}.png"))
    faces = skimage.data.lfw_subset()[: count // 3]  # 25 x 25 faces, upscaled to 224 px
    for face in faces:
        big = F.interpolate(torch.from_numpy(grey(face))[None, None], size=(224, 224))[0, 0]
        kinds["photographs (held out)"].append(synthetic(big.numpy(), "face.png"))
    return kinds


def grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114])
    return ((image - image.min()) / max(image.max() - image.min(), 1e-9)).astype(np.float32)


class Checked:
    """Gate verdicts, classes and OOD flags for a list of images, the forward passes batched."""

    def __init__(self, classifier: Classifier, gate: InputGate, ood: OODStatistics | None):
        self.classifier, self.gate, self.ood = classifier, gate, ood

    def run(self, xrays: list[XRay]) -> tuple[list, np.ndarray, np.ndarray]:
        units = [x.render() for x in xrays]
        gates = self.gate.decide(
            np.stack([unit_thumbnail(u) for u in units]),
            [image_statistics(u) for u in units],
            [view_warnings(x) for x in xrays],
        )
        classes, ood_flags = [], []
        prep = self.classifier.preprocessing
        for k in range(0, len(units), 32):
            batch = np.stack([prep.from_unit(u) for u in units[k : k + 32]])
            logits, features = self.classifier.logits_and_features(batch)
            classes.extend(logits.argmax(1).tolist())
            if self.ood is not None:
                scores = self.ood.score(features)
                ood_flags.extend((scores > self.ood.threshold).tolist())
            else:
                ood_flags.extend([False] * len(logits))
        return gates, np.array(classes), np.array(ood_flags)


def test_paths(model: Path, count: int, seed: int) -> list[str]:
    split = model.parent / model.stem / "split.csv"
    rows = [r["path"] for r in csv.DictReader(split.open()) if r["split"] == "test"]
    rng = np.random.default_rng(seed)
    return [rows[i] for i in sorted(rng.choice(len(rows), min(count, len(rows)), replace=False))]


def median_ms(fn, items) -> float:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "chest-3class.json")
    parser.add_argument("--images", type=int, default=300, help="test-split radiographs")
    parser.add_argument("--others", type=int, default=60, help="images per generated kind")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    started = time.perf_counter()
    classifier = Classifier.load(args.model, device="cpu")
    gate = InputGate.default()
    ood = OODStatistics.from_card(classifier.card)
    checked = Checked(classifier, gate, ood)
    xrays = [load_xray(args.data / p) for p in test_paths(args.model, args.images, args.seed)]
    print(f"model {classifier.card.label} on {classifier.device.label}; "
          f"{len(xrays)} test-split radiographs; OOD statistics: {ood is not None}")  # fmt: skip
    corpus: dict[str, list[XRay]] = {}
    for xray in xrays:
        for kind, image in radiograph_kinds(xray).items():
            corpus.setdefault(kind, []).append(image)
    corpus.update(other_kinds(args.others, args.seed + 1))

    results = {kind: checked.run(images) for kind, images in corpus.items()}
    print("\n| kind | n | flagged (any) | by the gate | by OOD only | expected code |")
    print("| --- | --- | --- | --- | --- | --- |")
    expect = {"rotated": ROTATED, "inverted": INVERTED, "untouched": None}
    for kind, (gates, _classes, ood_flags) in results.items():
        by_gate = np.array([not g.passed for g in gates])
        anyflag = by_gate | ood_flags
        code = next((c for k, c in expect.items() if kind.startswith(k)), "")
        right = f"{np.mean([code in g.codes for g in gates]):.1%} {code}" if code else "-"
        print(f"| {kind} | {len(gates)} | {anyflag.mean():.1%} | {by_gate.mean():.1%} | "
              f"{(ood_flags & ~by_gate).mean():.1%} | {right} |")  # fmt: skip

    # Auto-orient: correct what the gate calls correctable, classify again.
    original = results["untouched"][1]
    print("\n| auto-orient | n | correctable | class restored (of all) |")
    print("| --- | --- | --- | --- |")
    total_ok = total_n = 0
    for kind in ("rotated 90", "rotated 180", "rotated 270", "inverted"):
        gates = results[kind][0]
        fixed = [
            corrected(x, g) if g.correctable else x
            for x, g in zip(corpus[kind], gates, strict=True)
        ]
        _g, classes, _o = checked.run(fixed)
        ok = int(np.sum(classes == original))
        total_ok, total_n = total_ok + ok, total_n + len(classes)
        correctable = np.mean([g.correctable for g in gates])
        print(f"| {kind} | {len(classes)} | {correctable:.1%} | {ok / len(classes):.1%} |")
    print(f"| all rotated and inverted | {total_n} | | {total_ok / total_n:.1%} |")

    # Time: the classifier alone against the checks it adds, per image, same run.
    sample = [(x, x.render()) for x in xrays[:40]]

    def classify(item: tuple[XRay, np.ndarray]) -> None:
        xray = item[0]  # rendering included: the checks reuse the rendered image
        classifier.logits_and_features(classifier.preprocessing.from_unit(xray.render())[None])

    def checks(item: tuple[XRay, np.ndarray]) -> None:
        xray, unit = item
        gate.decide(unit_thumbnail(unit)[None], [image_statistics(unit)], [view_warnings(xray)])
        if ood is not None:
            ood.score(np.zeros((1, ood.means.shape[1]), dtype=np.float32))

    classify(sample[0])
    base = median_ms(classify, sample)
    extra = median_ms(checks, sample)
    print(f"\nsingle image: classifier {base:.1f} ms, trust checks {extra:.2f} ms "
          f"(+{extra / base:.1%}); {torch.get_num_threads()} threads")  # fmt: skip
    print(f"CPU: {cpu_name()}; "
          f"bench wall time {time.perf_counter() - started:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
