"""Issue 27 item 4's measure: the appearance heads (trust/appearance.py) on films they never
trained on, through the warnings the verdict gives, and what they add to one image's time.

    python tests/benchmarks/bench_appearance.py [--per-pool 400] [--model CARD.json]

(the model defaults to models/pediatric-pneumonia.json).

Films: held-out patients (training/train_appearance.py's patient hash) of the two pools
the heads trained on, every film of the pools they never saw (ozturk-nih, covid-cxnet:
adults from other hospitals; capped by --per-pool, seeded) and the full-size adult samples
(DICOM and PNG) under ../shared/data/samples. Each film is judged as it is and mirrored
left to right. Reported per group: ``mirrored`` on mirrored films (target >= 95 %) and on
untouched ones (false flags), and ``outside_population`` from the estimate alone (no age
known) under the pediatric card (target on adults >= 95 %; on children: false warnings),
all after the gate network, as in the verdict.

Time: the budget figure is the whole one-image check (TrustCheck.classify: render, gate,
classifier, OOD, attention, verdict), median per image, with the heads and with a stand-in
that costs nothing, interleaved in the same run (budget: +10 %). Also printed: the
classifier alone (render, preprocess, forward pass, batch of one) and the heads alone
(the gate's thumbnail again, which TrustCheck shares with the gate, and the network); on
a busy 2-core machine the latter is inflated by the runtime's own threads still running.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_trust import median_ms  # noqa: E402
from tests.benchmarks.machine import cpu_name  # noqa: E402
from training.train_appearance import (  # noqa: E402
    TRAIN_POOLS,
    UNSEEN_POOLS,
    held_out,
    pool_rows,
    sample_files,
    thumbnails,
)
from xraydesk.classifier import Classifier  # noqa: E402
from xraydesk.imaging.loader import load_xray  # noqa: E402
from xraydesk.model.card import ModelCard  # noqa: E402
from xraydesk.trust.appearance import (  # noqa: E402
    N_OUTPUTS,
    AppearanceHeads,
    appearance_warnings,
)
from xraydesk.trust.check import TrustCheck  # noqa: E402
from xraydesk.trust.codes import MIRRORED, OUTSIDE_POPULATION  # noqa: E402
from xraydesk.trust.gate import InputGate, unit_thumbnail  # noqa: E402


def groups(data: Path, per_pool: int, seed: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(seed)
    found = {}
    for pool in TRAIN_POOLS + UNSEEN_POOLS:
        rows = pool_rows(pool, data)
        if pool in TRAIN_POOLS:
            rows = [r for r in rows if held_out(r[1])]
        picked = sorted(rng.choice(len(rows), min(per_pool, len(rows)), replace=False))
        name = f"{pool} ({'held-out patients' if pool in TRAIN_POOLS else 'never trained on'})"
        found[name] = [rows[i][0] for i in picked]
    found["samples, full size (never trained on)"] = sample_files(data)
    return found


def shares(heads: AppearanceHeads, card: ModelCard, thumbs: np.ndarray) -> tuple[float, float]:
    """Share of films with ``outside_population``, and with ``mirrored``, as the verdict
    gives them: after the gate network (a film it calls rotated or inverted is not judged)."""
    gates = InputGate.default().decide(thumbs, [[] for _ in thumbs])
    looks = heads.estimate(thumbs)
    codes = [
        {w.code for w in appearance_warnings(card, a, g.warnings)}
        for a, g in zip(looks, gates, strict=True)
    ]
    return (
        float(np.mean([OUTSIDE_POPULATION in c for c in codes])),
        float(np.mean([MIRRORED in c for c in codes])),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "pediatric-pneumonia.json")
    parser.add_argument("--per-pool", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds")
    args = parser.parse_args()
    started = time.perf_counter()
    heads = AppearanceHeads.default()
    card = ModelCard.read(args.model)
    print(f"card {card.label}, population {card.population.age_text}")
    print("\n| films | n | mirrored: flagged | untouched: false flags | "
          "outside_population (estimate) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    for name, paths in groups(args.data, args.per_pool, args.seed).items():
        thumbs = thumbnails(paths)
        warned, false_flags = shares(heads, card, thumbs)
        _, flagged = shares(heads, card, np.ascontiguousarray(thumbs[..., ::-1]))
        print(f"| {name} | {len(paths)} | {flagged:.1%} | {false_flags:.1%} | {warned:.1%} |")

    classifier = Classifier.load(args.model, device="cpu")
    sample = [load_xray(p) for p in sample_files(args.data)]
    sample += [load_xray(p) for _, p in zip(range(20), groups(args.data, 20, 1)[
        f"{UNSEEN_POOLS[0]} (never trained on)"], strict=False)]  # fmt: skip

    def classify(xray) -> None:
        tensor = classifier.preprocessing.from_unit(xray.render())
        classifier.forward(tensor[None])

    rendered = [(x, x.render()) for x in sample]
    classify(sample[0])
    base = median_ms(classify, sample)
    extra = median_ms(lambda item: heads.estimate(unit_thumbnail(item[1])[None]), rendered)
    print(f"\nsingle image ({len(sample)} films, full-size samples included): classifier "
          f"{base:.1f} ms ({classifier.device.label}), appearance heads alone {extra:.2f} ms "
          f"(+{extra / base:.1%})")  # fmt: skip
    # The whole one-image check (TrustCheck: viewer, CLI) with the heads and with a
    # stand-in that costs nothing, interleaved so both see the same load.
    free = AppearanceHeads(lambda t: np.zeros((len(t), N_OUTPUTS), np.float32))
    checks = {"with": TrustCheck(classifier), "without": TrustCheck(classifier, appearance=free)}
    times: dict[str, list[float]] = {k: [] for k in checks}
    for _ in range(args.rounds):
        for xray in sample:
            for name, check in checks.items():
                start = time.perf_counter()
                check.classify(xray)
                times[name].append(time.perf_counter() - start)
    with_, without = (statistics.median(times[k]) * 1000 for k in ("with", "without"))
    print(f"TrustCheck.classify, median of {len(times['with'])}: {with_:.1f} ms with the heads, "
          f"{without:.1f} ms without (+{with_ / without - 1:.1%})")  # fmt: skip
    print(f"CPU: {cpu_name()}; bench wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
