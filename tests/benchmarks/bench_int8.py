"""Could int8 make the faithful runtime faster than plain OpenVINO bf16? (issue 28)

On a CPU without AMX, plain OpenVINO bf16 already runs at the hardware's bf16 limit, so
the end-to-end "4x a naive loop" of issue 28 needs a cheaper arithmetic: int8 (AVX-512
VNNI). This measures the best int8 graph we could build against the faithfulness bar and
against plain bf16, in one run:

- the graph (``runtime.int8_graph``): the exported ResNet-50 (``runtime.resnet_walk``)
  with an OpenVINO FakeQuantize before every convolution but the stem (kept at fp32, as
  the mixed bf16 graph keeps it): activations per tensor over the largest value seen on the training
  split (``--calibration`` films; clipping at a high percentile was measured worse),
  weights per output channel, symmetric. OpenVINO's low-precision pass then runs those
  convolutions in u8 x i8, the rest at fp32 (the int8 compile's f32 precision).
- faithfulness on ``--test`` test-split films against OpenVINO fp32 (the exported graph,
  torch's fp32 to about 1e-6), by the bar of ``runtime.faithful``;
- ``D``, the largest logit-difference error on ``--val`` validation films, and the share
  of test rows that ``runtime.recheck``'s bound would run again (there: on the mixed bf16
  graph, which passes the bar on its own);
- images/s at batch 32, interleaved rounds: plain bf16, int8 alone, int8 rechecked.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_int8.py --data ../shared/data \
        [--keep layer1] [--sweep] [--val N] [--test N]

``--sweep`` first prints the error with each ResNet stage left out of int8 and alone in
int8 (accuracy figures: a loaded machine does not change them); ``--keep PREFIX`` leaves
those convolutions out of int8 (they run at fp32) in the graph measured after it.

No target of its own: it says whether an int8 runtime could meet issue 28's target; the
answer goes into tests/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tests.benchmarks.bench_runtime import batches, preprocess_all, split_paths  # noqa: E402
from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402
from xraydesk.model.card import ModelCard  # noqa: E402
from xraydesk.model.probabilities import softmax  # noqa: E402
from xraydesk.runtime.export import exported_graph  # noqa: E402
from xraydesk.runtime.faithful import BAR, compare  # noqa: E402
from xraydesk.runtime.int8_graph import calibration_ranges, int8_model, quantized_names  # noqa: E402
from xraydesk.runtime.mixed import MixedOpenVinoBackend  # noqa: E402
from xraydesk.runtime.openvino_backend import OpenVinoBackend  # noqa: E402
from xraydesk.runtime.openvino_graph import save_ir  # noqa: E402
from xraydesk.runtime.recheck import RecheckedBackend, difference_error, uncertain_rows  # noqa: E402


def sample(card_path: Path, split: str, count: int, seed: int) -> list[str]:
    paths = split_paths(card_path, split)
    if count >= len(paths):
        return paths
    rng = np.random.default_rng(seed)
    return [paths[i] for i in sorted(rng.choice(len(paths), count, replace=False))]


def logits(backend, x: np.ndarray) -> np.ndarray:
    return np.concatenate([backend.run(b, activations=False).logits for b in batches(x)])


def rates(fns: dict, x: np.ndarray, rounds: int, seconds: float) -> dict[str, float]:
    """Median batch-32 images/s per variant over interleaved rounds, cycling the films."""
    full = [b for b in batches(x) if len(b) == 32]
    out: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn(full[0])
    for _ in range(rounds):
        for name, fn in fns.items():
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds or count == 0:
                fn(full[(count // 32) % len(full)])
                count += 32
            out[name].append(count / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in out.items()}


STAGES = ("layer1", "layer2", "layer3", "layer4")


def sweep(card: ModelCard, ranges: dict[str, float], val, test, fp32, temperature) -> None:
    """Which convolutions the int8 error comes from: D, the recheck's rerun share and the
    bar's figures with each stage left out of int8, and with each stage alone in int8."""
    ref_val, exact = logits(fp32, val), softmax(logits(fp32, test), temperature)
    variants = {"all": lambda _n: True}
    for stage in STAGES:
        variants[f"all but {stage}"] = lambda n, s=stage: not n.startswith(s)
        variants[f"only {stage}"] = lambda n, s=stage: n.startswith(s)
    print("| int8 on | convolutions | D | rerun | max abs | same top |\n|---|---|---|---|---|---|")
    for label, chosen in variants.items():
        kept = {name: top for name, top in ranges.items() if chosen(name)}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "int8.xml"
            save_ir(int8_model(card, kept), path)
            int8 = OpenVinoBackend(path, "int8", cached=False)
            error = difference_error(logits(int8, val), ref_val)
            test_logits = logits(int8, test)
            share = float(uncertain_rows(test_logits, temperature, error).mean())
            f = compare(exact, softmax(test_logits, temperature))
        print(f"| {label} | {len(kept)} | {error:.4f} | {share:.1%} | {f.max_abs:.4f} | "
              f"{f.same_top:.2%} |", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", default="chest-3class")
    parser.add_argument("--calibration", type=int, default=256)
    parser.add_argument("--val", type=int, default=400)
    parser.add_argument("--test", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="PREFIX",
        help="leave the convolutions whose name starts so out of int8, at fp32 (e.g. layer1)",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="first, the error with each stage in or out of int8"
    )
    args = parser.parse_args()
    card_path = ROOT / "models" / f"{args.model}.json"
    card = ModelCard.read(card_path)
    prep, temperature = card.preprocessing, card.temperature
    print(f"CPU: {cpu_name()}; load {load_average()}")
    wanted = (("train", args.calibration, 1), ("val", args.val, 2), ("test", args.test, 0))
    calib, val, test = (
        preprocess_all(sample(card_path, split, n, seed), args.data, prep)
        for split, n, seed in wanted
    )
    ir = exported_graph(card, "ir").path
    ranges = calibration_ranges(card, calib, quantized_names(()))
    if args.sweep:
        fp32 = OpenVinoBackend(ir, "fp32", cached=False)
        sweep(card, ranges, val, test, fp32, temperature)
    keep = tuple(args.keep)
    kept = {n: top for n, top in ranges.items() if not (keep and n.startswith(keep))}
    int8_name = f"openvino int8 (stem fp32{''.join(f', {k} fp32' for k in keep)})"
    with tempfile.TemporaryDirectory() as tmp:
        int8_ir = Path(tmp) / "int8.xml"
        save_ir(int8_model(card, kept), int8_ir)
        fp32 = OpenVinoBackend(ir, "fp32", cached=False)
        bf16 = OpenVinoBackend(ir, "bf16", cached=False)
        mixed = MixedOpenVinoBackend(ir)
        int8 = OpenVinoBackend(int8_ir, "int8", cached=False)
        error = difference_error(logits(int8, val), logits(fp32, val))
        rechecked = RecheckedBackend(int8, lambda mode: mixed, temperature, error)
        exact = softmax(logits(fp32, test), temperature)
        int8_logits = logits(int8, test)
        share = float(uncertain_rows(int8_logits, temperature, error).mean())
        left = f", not in int8: {', '.join(args.keep)}" if args.keep else ""
        print(f"\n{card.label}: {len(calib)} calibration, {len(val)} validation, "
              f"{len(test)} test films; bar: same top >= {BAR.same_top:.1%}, mean <= "
              f"{BAR.mean_abs}, max <= {BAR.max_abs}{left}")  # fmt: skip
        print(f"int8 logit-difference error D on the validation films: {error:.4f}; "
              f"the recheck's bound would run {share:.1%} of the test films again")  # fmt: skip
        rows = {
            "openvino bf16": bf16,
            "openvino bf16-fp32stem": mixed,
            int8_name: int8,
            "int8, mixed bf16 where uncertain": rechecked,
        }
        print("| variant | same top | mean abs | max abs | passed |\n|---|---|---|---|---|")
        for name, backend in rows.items():
            f = compare(exact, softmax(logits(backend, test), temperature))
            print(f"| {name} | {f.same_top:.2%} | {f.mean_abs:.5f} | {f.max_abs:.4f} | "
                  f"{'yes' if f.passed else 'NO'} |")  # fmt: skip
        speed = rates(
            {name: (lambda b, k=k: k.run(b, activations=False)) for name, k in rows.items()},
            test,
            args.rounds,
            args.seconds,
        )
    base = speed["openvino bf16"]
    print(f"\nbatch 32, median of {args.rounds} interleaved rounds; load {load_average()}")
    for name, rate in speed.items():
        print(f"  {name}: {rate:.1f} images/s, {rate / base:.2f}x plain bf16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
