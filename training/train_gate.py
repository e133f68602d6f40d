"""Train the input gate (xraydesk/trust/gate.py) and write xraydesk/trust/gate.safetensors.

Positives are radiographs from the chest-3class *training* split (never its validation or
test split, which the gate benchmark uses), transformed on the fly: rotated by 0/90/180/
270 degrees, inverted, cropped to a corner, with contrast, gamma and crop jitter.
Negatives are generated here (noise of several kinds, blank and near-constant images,
checkerboards, stripes, gradients, shapes, text pages drawn with Pillow) and taken from
the sample photographs scikit-image ships (a training-time dependency only: the trained
weights are what the package carries). The photographs listed in HELD_OUT are never
used here: the benchmark (tests/benchmarks/bench_trust.py) tests on them.

Run: python training/train_gate.py [--images 4000] [--steps 2500]   (about 5 min, 2 cores)
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xraydesk.imaging.loader import load_xray  # noqa: E402
from xraydesk.trust.gate import (  # noqa: E402
    GATE_FILE,
    THUMB,
    InputGate,
    image_statistics,
    standardise,
)
from xraydesk.trust.gate_net import GateNet, torch_logits  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SPLIT = ROOT / "models" / "chest-3class" / "split.csv"
# scikit-image sample photographs used for training; the benchmark uses HELD_OUT only.
TRAIN_PHOTOS = (
    "camera", "coffee", "chelsea", "horse", "coins", "moon", "page", "text", "brick", "grass",
    "gravel", "clock", "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
    "logo", "colorwheel", "shepp_logan_phantom", "cell", "microaneurysms", "skin", "lily",
    "eagle", "binary_blobs",
)  # fmt: skip
HELD_OUT = ("astronaut", "stereo_motorcycle", "lfw_subset")  # cat is chelsea: not held out
CACHE = 128  # radiographs are cached at this size; crops are taken from it


def resize(image: torch.Tensor, side: int) -> torch.Tensor:
    """(H, W) [0, 1] -> (side, side), as the gate does at run time."""
    return F.interpolate(
        image[None, None].float(),
        size=(side, side),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )[0, 0].clamp_(0, 1)


def training_rows(limit: int, seed: int) -> list[str]:
    rows = [r["path"] for r in csv.DictReader(SPLIT.open()) if r["split"] == "train"]
    rng = np.random.default_rng(seed)
    return [rows[i] for i in rng.permutation(len(rows))[:limit]]


def split_rows(split: str, limit: int, seed: int) -> list[str]:
    rows = [r["path"] for r in csv.DictReader(SPLIT.open()) if r["split"] == split]
    rng = np.random.default_rng(seed)
    return [rows[i] for i in rng.permutation(len(rows))[:limit]]


def load_radiographs(paths: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each radiograph at CACHE px (crops come from it) and as the gate's thumbnail."""
    cache = torch.empty(len(paths), CACHE, CACHE)
    thumbs = torch.empty(len(paths), THUMB, THUMB)
    for i, rel in enumerate(paths):
        unit = torch.from_numpy(load_xray(DATA / rel).render())
        cache[i] = resize(unit, CACHE)
        thumbs[i] = thumb(unit)
    return cache, thumbs


def photo(name: str) -> np.ndarray:
    """A scikit-image sample as a grey [0, 1] float image."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":
        image = image[0]
    if name == "brain":
        image = image[5]
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114])
    image = image - image.min()
    return (image / max(image.max(), 1e-9)).astype(np.float32)


def load_photos(names: tuple[str, ...]) -> list[torch.Tensor]:
    out = []
    for name in names:
        try:
            out.append(torch.from_numpy(photo(name)))
        except Exception as exc:  # a sample that needs a download is skipped
            print(f"  skip {name}: {type(exc).__name__}", flush=True)
    return out


# -- generated negatives --------------------------------------------------------------------
def text_page(rng: np.random.Generator, side: int = 256) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    ink, paper = (0, 255) if rng.random() < 0.8 else (255, 0)
    img = Image.new("L", (side * 2, side * 2), paper)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=int(rng.integers(10, 28)))
    y = int(rng.integers(0, 30))
    letters = "abcdefghijklmnopqrstuvwxyz      ABCDEFGHIJKLMNOP0123456789.,"
    while y < side * 2:
        line = "".join(rng.choice(list(letters), int(rng.integers(20, 80))))
        draw.text((int(rng.integers(0, 40)), y), line, fill=ink, font=font)
        y += int(rng.integers(14, 40))
    return np.asarray(img, dtype=np.float32) / 255.0


def generated(rng: np.random.Generator, side: int = THUMB * 2) -> np.ndarray:
    """One synthetic non-radiograph."""
    kind = rng.integers(0, 10)
    yy, xx = np.mgrid[0:side, 0:side] / side
    if kind == 0:  # white, uniform or salt-and-pepper noise
        image = rng.random((side, side))
        if rng.random() < 0.3:
            image = (image > 0.5).astype(float)
    elif kind == 1:  # smooth noise at a random scale
        small = rng.random((int(rng.integers(2, 24)),) * 2)
        image = resize(torch.from_numpy(small), side).numpy()
    elif kind == 2:  # blank or near-constant
        image = np.full((side, side), rng.random()) + rng.normal(
            0, rng.random() * 0.03, (side,) * 2
        )
    elif kind == 3:  # checkerboard
        n = int(rng.integers(2, 16))
        image = ((np.floor(yy * n) + np.floor(xx * n)) % 2).astype(float)
        image = image * rng.uniform(0.3, 1) + rng.uniform(0, 0.3)
    elif kind == 4:  # stripes
        f = rng.uniform(2, 30)
        image = 0.5 + 0.5 * np.sin(2 * np.pi * f * (xx if rng.random() < 0.5 else yy))
    elif kind == 5:  # gradient
        a, b = rng.normal(size=2)
        image = a * xx + b * yy
    elif kind == 6:  # shapes
        image = np.full((side, side), rng.random())
        for _ in range(int(rng.integers(1, 8))):
            cx, cy, r = rng.random(3)
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < (r * 0.4) ** 2
            if rng.random() < 0.5:
                x0, y0 = rng.random(2)
                mask = (abs(xx - x0) < r * 0.3) & (abs(yy - y0) < rng.random() * 0.3)
            image[mask] = rng.random()
    else:  # text page
        image = resize(torch.from_numpy(text_page(rng)), side).numpy()
    image = image - image.min()
    return (image / max(float(image.max()), 1e-9)).astype(np.float32)


# -- samples ----------------------------------------------------------------------------------
def thumb(image: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(standardise(resize(image, THUMB)[None].numpy()))[0]


def jitter(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Contrast, gamma and a mild crop, so the gate does not key on one scanner's look."""
    side = image.shape[-1]
    n = int(side * rng.uniform(0.85, 1.0))
    top, left = rng.integers(0, side - n + 1, size=2)
    image = image[top : top + n, left : left + n].clamp(0, 1) ** float(np.exp(rng.normal(0, 0.3)))
    if rng.random() < 0.2:
        image = image + torch.from_numpy(rng.normal(0, 0.02, image.shape)).float()
    return image


def corner_crop(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A corner of 30-60 % of the side: part of a radiograph (the gate says low_quality)."""
    n = int(image.shape[-1] * rng.uniform(0.3, 0.6))
    corner = int(rng.integers(0, 4))
    top = 0 if corner in (0, 1) else image.shape[-2] - n
    left = 0 if corner in (0, 2) else image.shape[-1] - n
    return image[top : top + n, left : left + n]


def photo_crop(photos: list[torch.Tensor], rng: np.random.Generator) -> torch.Tensor:
    image = photos[int(rng.integers(0, len(photos)))]
    h, w = image.shape
    n = int(min(h, w) * rng.uniform(0.3, 1.0))
    top, left = int(rng.integers(0, h - n + 1)), int(rng.integers(0, w - n + 1))
    return image[top : top + n, left : left + n]


class Pools:
    """Standardised 64 x 64 thumbnails built once; a step only turns, flips and negates them
    (turning and negating commute with standardisation), which keeps a step cheap."""

    def __init__(self, thumbs64, cache, photos, negatives: int, rng) -> None:
        jittered = torch.stack([thumb(jitter(c, rng)) for c in cache])
        self.chest = torch.cat([thumbs64, jittered])
        self.partial = torch.stack([thumb(corner_crop(c, rng)) for c in cache])
        made = [thumb(torch.from_numpy(generated(rng))) for _ in range(negatives)]
        made += [thumb(photo_crop(photos, rng)) for _ in range(negatives)] if photos else []
        self.other = torch.stack(made)

    def batch(self, rng: np.random.Generator, size: int):
        kind = rng.choice(3, size=size, p=[0.47, 0.08, 0.45])
        thumbs = torch.empty(size, 1, THUMB, THUMB)
        turns = torch.full((size,), -100)
        inverted = torch.full((size,), -100)
        for code, pool in enumerate((self.chest, self.partial, self.other)):
            where = np.flatnonzero(kind == code)
            picked = pool[torch.from_numpy(rng.integers(0, len(pool), len(where)))]
            k = np.where(rng.random(len(where)) < 0.5, rng.integers(1, 4, len(where)), 0)
            v = rng.random(len(where)) < 0.3
            for i, (t, kk, vv) in enumerate(zip(picked, k, v, strict=True)):
                t = torch.rot90(t, int(kk), (0, 1))
                if code == 2 and rng.random() < 0.5:
                    t = t.flip(1)
                thumbs[where[i], 0] = -t if vv else t
            if code != 2:
                turns[where] = torch.from_numpy(k).long()
                inverted[where] = torch.from_numpy(v.astype(np.int64))
        return thumbs, torch.from_numpy(kind).long(), turns, inverted


def evaluate(gate: InputGate, cache: torch.Tensor, seed: int) -> dict:
    """Flag rates on held-out radiographs (validation split) and fresh negatives."""
    rng = np.random.default_rng(seed)
    rates: dict[str, float] = {}
    for name, turns, inv in (("upright", 0, 0), ("rot90", 1, 0), ("rot180", 2, 0),
                             ("rot270", 3, 0), ("inverted", 0, 1)):  # fmt: skip
        units = [torch.rot90(u, turns, (0, 1)) for u in cache]
        units = [1 - u if inv else u for u in units]
        thumbs = torch.stack([thumb(u)[None] for u in units])
        results = gate.decide(thumbs.numpy(), [[] for _ in units])
        rates[name] = float(np.mean([not r.passed for r in results]))
    units = [torch.from_numpy(generated(rng)) for _ in range(400)]
    thumbs = torch.stack([thumb(u)[None] for u in units])
    stats = [image_statistics(u.numpy()) for u in units]
    rates["generated"] = float(np.mean([not r.passed for r in gate.decide(thumbs.numpy(), stats)]))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--negatives", type=int, default=3000, help="generated negatives")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=GATE_FILE)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    print("loading radiographs", flush=True)
    cache, thumbs64 = load_radiographs(training_rows(args.images, args.seed))
    val, _ = load_radiographs(split_rows("val", 400, args.seed))
    photos = load_photos(TRAIN_PHOTOS)
    pools = Pools(thumbs64, cache, photos, args.negatives, rng)
    print(f"  {len(cache)} train, {len(val)} val, {len(photos)} photos "
          f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    net = GateNet()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps)
    for step in range(args.steps):
        net.train()
        x, c, k, v = pools.batch(rng, args.batch)
        out = net(x)
        loss = (
            F.cross_entropy(out[:, 0:3], c)
            + F.cross_entropy(out[:, 3:7], k, ignore_index=-100)
            + F.cross_entropy(out[:, 7:9], v, ignore_index=-100)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"  step {step} loss {loss.item():.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    net.eval()
    rates = evaluate(InputGate(torch_logits(net)), val, args.seed + 1)
    print("validation flag rates:", json.dumps(rates), flush=True)
    info = {
        "trained_by": "training/train_gate.py",
        "radiographs": f"{len(cache)} from the chest-3class training split",
        "photos": list(TRAIN_PHOTOS),
        "held_out_photos": list(HELD_OUT),
        "steps": args.steps,
        "batch": args.batch,
        "seed": args.seed,
        "validation_flag_rates": rates,
        "wall_time_s": round(time.perf_counter() - start, 1),
        "hardware": platform.processor() or platform.machine(),
    }
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(args.out), metadata={"info": json.dumps(info)})
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
