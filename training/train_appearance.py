"""Train the appearance heads (xraydesk/trust/appearance.py): mirrored film, young child or adult.

Writes xraydesk/trust/appearance.safetensors (a ``GateNet`` with four outputs, run in
numpy by ``gate_forward``) and xraydesk/trust/appearance.json, the record of how it was
trained and what it scored on images it never saw.

Data (../shared/data, read in place): the gate's 64 x 64 thumbnail of every radiograph
of kermany-pediatric (children aged 1 to 5) and covid19-radiography (adults). Patients
are split by a hash of the manifest's ``patient`` (the file itself where the pool gives
none): one in five is held out. Training draws the two pools equally, jitters each
thumbnail (scale, shift, a few degrees of rotation, gamma) and flips half of them left to
right: the mirror head learns those flips, the age head the pool's population.

Pool and hospital go together here (every child comes from one hospital), so the age
head could learn the hospital. It is judged on pools it never saw: ozturk-nih and
covid-cxnet (adults from other hospitals) and the full-size adult samples under
../shared/data/samples. No children from another hospital exist in the data, so the false
"adult" rate on children is measured on held-out kermany patients only.

Run: python training/train_appearance.py [--steps 1200]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xraydesk.imaging.loader import load_xray  # noqa: E402
from xraydesk.trust.appearance import (  # noqa: E402
    APPEARANCE_FILE,
    N_OUTPUTS,
    P_GROUP,
    P_MIRRORED,
    AppearanceHeads,
)
from xraydesk.trust.gate import unit_thumbnail  # noqa: E402
from xraydesk.trust.gate_net import GateNet, torch_logits  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CHILDREN = "kermany-pediatric"
TRAIN_POOLS = (CHILDREN, "covid19-radiography")
UNSEEN_POOLS = ("ozturk-nih", "covid-cxnet")  # adults from hospitals never trained on
HELD_OUT_SHARE = 5  # one patient in five


def held_out(patient: str) -> bool:
    """The patient's fixed side of the split (a hash, so reruns and tests agree)."""
    return zlib.crc32(patient.encode()) % HELD_OUT_SHARE == 0


def pool_rows(pool: str, data: Path = DATA) -> list[tuple[Path, str]]:
    """(file, patient) for each image of a pool; the file stands for a missing patient."""
    rows = csv.DictReader((data / pool / "manifest.csv").open(newline=""))
    return [(data / pool / r["path"], r["patient"] or r["path"]) for r in rows]


def thumbnails(paths: list[Path]) -> np.ndarray:
    """The gate's thumbnails (N, 1, 64, 64), as the app computes them."""
    return np.stack([unit_thumbnail(load_xray(p).render()) for p in paths])


def load_pools(data: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every pool's thumbnails and held-out mask."""
    pools = {}
    for pool in TRAIN_POOLS + UNSEEN_POOLS:
        rows = pool_rows(pool, data)
        pools[pool] = {
            "x": thumbnails([p for p, _ in rows]),
            "test": np.array([held_out(patient) for _, patient in rows]),
        }
        print(f"  {pool}: {len(rows)} images", flush=True)
    return pools


def standardised(x: torch.Tensor) -> torch.Tensor:
    """Per image zero mean, unit (unbiased) std, clipped to +-4: ``gate.standardise``."""
    mean = x.mean((1, 2, 3), keepdim=True)
    std = x.std((1, 2, 3), keepdim=True).clamp_min(1e-3)
    return ((x - mean) / std).clamp(-4.0, 4.0)


def jittered(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Scale +-10 %, shift +-8 %, rotation +-5 degrees and a gamma change, standardised again."""
    n = len(x)

    def uniform(half: float) -> torch.Tensor:
        return (torch.rand(n, generator=g) - 0.5) * 2 * half

    scale, angle = 1 + uniform(0.1), uniform(0.087)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, 0, 1], theta[:, 1, 0] = -scale * torch.sin(angle), scale * torch.sin(angle)
    theta[:, 0, 2], theta[:, 1, 2] = uniform(0.08), uniform(0.08)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    gamma = torch.exp(uniform(0.3))[:, None, None, None]
    return standardised(torch.sigmoid(1.2 * x) ** gamma)


def train(pools: dict, steps: int, batch: int, seed: int) -> GateNet:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    parts = [torch.from_numpy(pools[p]["x"][~pools[p]["test"]]) for p in TRAIN_POOLS]
    net = GateNet(N_OUTPUTS)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    start = time.perf_counter()
    net.train()
    for step in range(steps):
        half = batch // 2  # the pools equally: children first, adults second
        x = torch.cat([part[torch.randint(len(part), (half,), generator=g)] for part in parts])
        adult = torch.cat([torch.zeros(half), torch.ones(half)]).long()
        x = jittered(x, g)
        flip = torch.rand(len(x), generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # AMX where the CPU has it
            out = net(x).float()
        loss = F.cross_entropy(out[:, 0:2], flip.long()) + F.cross_entropy(out[:, 2:4], adult)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"  step {step} loss {loss.item():.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    return net.eval()


def rates(heads: AppearanceHeads, x: np.ndarray) -> dict[str, float]:
    """Flag rates on untouched and flipped images, and the share estimated adult."""
    plain = heads.estimate(x)
    flipped = heads.estimate(np.ascontiguousarray(x[..., ::-1]))
    return {
        "n": len(x),
        "mirrored_flagged": float(np.mean([a.mirrored for a in flipped])),
        "untouched_flagged": float(np.mean([a.mirrored for a in plain])),
        "estimated_adult": float(np.mean([a.p_adult > P_GROUP for a in plain])),
        "estimated_adult_mirrored": float(np.mean([a.p_adult > P_GROUP for a in flipped])),
    }


def sample_files(data: Path) -> list[Path]:
    """The full-size adult films (DICOM and PNG), loaded as the app loads them."""
    samples = data / "samples"
    return sorted(samples.glob("dicom/*.dcm")) + sorted(samples.glob("fullres/*.png"))


def evaluate(heads: AppearanceHeads, pools: dict, data: Path) -> dict[str, dict]:
    figures = {f"{p} held-out patients": rates(heads, pools[p]["x"][pools[p]["test"]])
               for p in TRAIN_POOLS}  # fmt: skip
    figures |= {f"{p} (never trained on)": rates(heads, pools[p]["x"]) for p in UNSEEN_POOLS}
    files = sample_files(data)
    if files:
        figures["samples, full size (never trained on)"] = rates(heads, thumbnails(files))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--seed", type=int, default=27)
    ap.add_argument("--out", type=Path, default=APPEARANCE_FILE)
    args = ap.parse_args()
    torch.set_num_threads(1)  # on a shared, busy machine one thread waits less
    start = time.perf_counter()
    print("loading radiographs", flush=True)
    pools = load_pools(args.data)
    net = train(pools, args.steps, args.batch, args.seed)
    figures = evaluate(AppearanceHeads(torch_logits(net)), pools, args.data)
    print(json.dumps(figures, indent=1), flush=True)
    info = {
        "trained_by": "training/train_appearance.py",
        "outputs": ["upright", "mirrored", "young child", "adult"],
        "trained_on": "training patients (4 in 5, by patient hash) of "
        + " and ".join(TRAIN_POOLS)
        + ", both pools drawn equally, half of each batch flipped left to right",
        "thresholds": {"p_mirrored": P_MIRRORED, "p_adult": P_GROUP},
        "held_out": figures,
        "steps": args.steps,
        "batch": args.batch,
        "seed": args.seed,
        "wall_time_s": round(time.perf_counter() - start, 1),
        "hardware": platform.processor() or platform.machine(),
    }
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(args.out), metadata={"info": json.dumps(info)})
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", flush=True)


if __name__ == "__main__":
    main()
