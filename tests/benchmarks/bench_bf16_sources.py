"""Issue 28, item 1: where OpenVINO bf16's logit error comes from, part by part.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_bf16_sources.py [--limit 320]

On the validation split of chest-3class (the images ``recheck`` measures its bound on;
preprocessed as its card says), each variant keeps one part of the exported graph at
fp32 and the rest at bf16 (``runtime.mixed``: the graph is cut at a named tensor and each
part compiled at its own precision, since OpenVINO 2026.4's Python API cannot mark a
node to stay fp32), and is compared with the whole graph at fp32 (OpenVINO fp32, which
equals fp32 torch to about 1e-6: tests/runtime/test_onnx_graph.py):

- logit error: the largest |logit - fp32 logit| (E), its 99.9th percentile over rows,
  and the largest error of a logit *difference* (D, what softmax sees); one more row
  runs the fp32 graph on inputs rounded to bf16, the error of that rounding alone;
- the share of rows the recheck would run again at fp32: with the old bound (from E)
  and with the shipped one (from D, ``recheck``), each from this variant's own errors;
- images/s at batch 32, variants interleaved, best of rounds, and the ratio to plain
  bf16 in the same run.

Batch norm folding is not a variant: the folded fp32 graph equals torch to 1e-6 (folding
in float64 adds no error); at bf16 each weight is rounded once, folded or not.
Prints the CPU and the load average: on a loaded machine compare ratios, not rates.
"""

from __future__ import annotations

import argparse
import sys
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
from xraydesk.runtime.mixed import CUTS, MixedOpenVinoBackend  # noqa: E402
from xraydesk.runtime.openvino_backend import OpenVinoBackend  # noqa: E402
from xraydesk.runtime.recheck import BUDGET, difference_error, uncertain_rows  # noqa: E402

BATCH = 32


def old_bound_rows(logits: np.ndarray, temperature: float, e: float) -> np.ndarray:
    """The rows the bound before issue 28 ran again: ``min(p, 1 - p)`` above
    ``budget / (exp(2 E / T) - 1)``, from the largest single-logit error ``E``."""
    p = softmax(logits, temperature)
    return np.minimum(p, 1 - p).max(axis=1) > BUDGET / np.expm1(2 * e / temperature)


class RoundedInput:
    """The fp32 graph on inputs rounded to bf16 first: the error of that rounding alone."""

    def __init__(self, fp32: OpenVinoBackend) -> None:
        self.fp32 = fp32

    def run(self, batch: np.ndarray, activations: bool = True):
        bits = np.ascontiguousarray(batch, np.float32).view(np.uint32)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).view(np.float32)
        return self.fp32.run(rounded, activations)


def tail_fp32(graph: Path, cut: str) -> MixedOpenVinoBackend:
    """bf16 up to ``cut``, fp32 after it."""
    return MixedOpenVinoBackend(graph, cut, body="bf16", tail="fp32")


def variants(graph: Path) -> dict:
    fp32 = OpenVinoBackend(graph, "fp32")
    stem = MixedOpenVinoBackend(graph, CUTS["stem"], body="fp32", tail="bf16")
    return {
        "none (plain bf16)": OpenVinoBackend(graph, "bf16"),
        "conv1 only": MixedOpenVinoBackend(graph, "conv1.relu", body="fp32", tail="bf16"),
        "stem: conv1 + max pool (shipped)": stem,
        "head (fc; the pool is fp32 already)": tail_fp32(graph, CUTS["head"]),
        "layer4.2 + head": tail_fp32(graph, CUTS["layer4.2"]),
        "layer4 + head": tail_fp32(graph, CUTS["layer4"]),
        "layer3 + layer4 + head": tail_fp32(graph, "layer2.3.out"),
        "everything (fp32)": fp32,
        "everything, on bf16-rounded input": RoundedInput(fp32),
    }


def logits(backend, x: np.ndarray) -> np.ndarray:
    return np.concatenate([backend.run(b, activations=False).logits for b in batches(x, BATCH)])


def rate(backends: dict, x: np.ndarray, rounds: int, seconds: float) -> dict[str, float]:
    full = [b for b in batches(x, BATCH) if len(b) == BATCH]
    best = dict.fromkeys(backends, 0.0)
    for b in backends.values():
        b.run(full[0], activations=False)
    for _ in range(rounds):
        for name, b in backends.items():
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds or count == 0:
                b.run(full[(count // BATCH) % len(full)], activations=False)
                count += BATCH
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", default="chest-3class")
    parser.add_argument("--limit", type=int, default=320, help="validation images (0: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    card_path = ROOT / "models" / f"{args.model}.json"
    card = ModelCard.read(card_path)
    paths = split_paths(card_path, "val")
    paths = paths[: args.limit] if args.limit else paths
    x = preprocess_all(paths, args.data, card.preprocessing)
    graph = exported_graph(card, "ir").path  # OpenVINO's own IR, as the app runs it
    backends = variants(graph)
    exact = logits(backends["everything (fp32)"], x)
    t = card.temperature
    print(f"{card.label}: {len(x)} validation images; CPU {cpu_name()}; load {load_average()}")
    timed = {k: v for k, v in backends.items() if not isinstance(v, RoundedInput)}
    speed = rate(timed, x, args.rounds, args.seconds) if args.rounds else {}
    plain = speed.get("none (plain bf16)", 0.0)
    print(
        "| kept at fp32 | E max | row p99.9 | D max | rerun (old bound) | rerun (shipped) "
        "| img/s | x plain bf16 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, backend in backends.items():
        z = logits(backend, x)
        per_row = np.abs(z - exact).max(axis=1)
        e, d = float(per_row.max()), difference_error(z, exact)
        old = old_bound_rows(z, t, e).mean()
        new = uncertain_rows(z, t, d).mean()
        s = speed.get(name, float("nan"))
        print(
            f"| {name} | {e:.4f} | {np.quantile(per_row, 0.999):.4f} | {d:.4f} | {old:.1%} "
            f"| {new:.1%} | {s:.1f} | {s / plain if plain else float('nan'):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
