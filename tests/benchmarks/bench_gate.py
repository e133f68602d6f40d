"""Issue 28's decode-stage measure: the input gate's and the appearance heads' network in
numpy and compiled by OpenVINO (fp32, ``runtime.gate_graph``), and the gate's image
statistics with ``np.percentile`` and with ``trust.percentiles.low_high``.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_gate.py [--films 64] [--rounds 5]

Figures are process CPU time (``time.process_time``: every thread OpenVINO or BLAS runs
counts) per image, the median over ``--rounds`` interleaved rounds of the same films, so
the ratios hold on a busy machine. Films: the first of each pool's manifest under
../shared/data (the decode stage's small, mostly 224 x 224, images), rendered and
thumbnailed once beforehand. Networks at batch 1 (what the decode stage runs, one image at
a time) and at batch 32. Also printed: each network's compile time (CPU and wall, OpenVINO
already started, as it is when a batch run compiles them) and the largest logit difference.

The whole decode stage too (``batch.prepare.Preparer`` on the same files: hash, decode,
render, gate, appearance, preprocessing for models/chest-3class, torch runtime), once as
before (numpy networks, ``np.percentile``) and once as now, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402
from tests.real_films import pool_films  # noqa: E402
from xraydesk.imaging.loader import load_xray  # noqa: E402
from xraydesk.runtime import openvino_backend  # noqa: E402
from xraydesk.trust import gate as gate_module  # noqa: E402
from xraydesk.trust.appearance import APPEARANCE_FILE, N_OUTPUTS, AppearanceHeads  # noqa: E402
from xraydesk.trust.gate import (  # noqa: E402
    GATE_FILE,
    InputGate,
    image_statistics,
    unit_thumbnail,
)
from xraydesk.trust.gate_forward import GateWeights  # noqa: E402
from xraydesk.trust.percentiles import low_high  # noqa: E402
from xraydesk.trust.thumb_nets import ThumbNets  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
POOLS = ("kermany-pediatric", "covid19-radiography", "ozturk-nih", "covid-cxnet")


def _paths(count: int) -> list[Path]:
    per_pool = max(1, -(-count // len(POOLS)))
    return [p for pool in POOLS for p in pool_films(DATA, per_pool, pool)][:count]


def _cpu_ms_per_item(work: Callable[[object], object], items: list) -> float:
    start = time.process_time()
    for item in items:
        work(item)
    return 1e3 * (time.process_time() - start) / len(items)


def _old_statistics(unit: np.ndarray) -> object:
    """``image_statistics`` as it was: ``np.percentile`` for the blank check's tails."""
    return _with_old_percentiles(image_statistics, unit)


def _decode_stages(numpy_nets: tuple, fast_nets: tuple) -> tuple[Callable, Callable]:
    """The batch engine's decode stage as before (numpy networks, ``np.percentile``) and
    as now (the runners, ``low_high``)."""
    from xraydesk.batch.prepare import Preparer
    from xraydesk.classifier import Classifier

    classifier = Classifier.load(ROOT / "models" / "chest-3class.json", "cpu", runtime="torch")
    stages = []
    for gate, heads in (numpy_nets, fast_nets):
        stage = Preparer(classifier, None, "bench", threading.Event())
        stage.nets = ThumbNets(gate, heads)
        stages.append(stage)

    def before(path: Path) -> object:
        return _with_old_percentiles(stages[0], path)

    return before, stages[1]


def _with_old_percentiles(function: Callable, argument: object) -> object:
    saved = gate_module.low_high
    gate_module.low_high = lambda sample, low, high: tuple(np.percentile(sample, [low, high]))
    try:
        return function(argument)
    finally:
        gate_module.low_high = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--films", type=int, default=64, help="films from the pools")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args(argv)

    print(f"CPU: {cpu_name()}")
    print(f"load average before: {load_average()}")
    paths = _paths(args.films)
    units = [load_xray(p).render() for p in paths]
    thumbs = np.stack([unit_thumbnail(u) for u in units])
    singles = [t[None] for t in thumbs]
    batches = [thumbs[i : i + 32] for i in range(0, len(thumbs), 32)]
    print(f"{len(units)} films, sides {sorted({u.shape for u in units})[:3]}...")

    work: dict[str, tuple[Callable, list, int]] = {}  # name -> (function, items, per item)
    if openvino_backend.installed():
        openvino_backend.core()  # started, as by the classifier before a batch run
    nets: dict[str, tuple] = {}  # name -> (numpy logits, runner, info)
    for name, path, width in (("gate", GATE_FILE, 9), ("appearance", APPEARANCE_FILE, N_OUTPUTS)):
        weights = GateWeights.load(path, n_logits=width)
        runner = weights.runner(compile_after=0)
        nets[name] = (weights.logits, runner, weights.info)
        cpu, wall = time.process_time(), time.perf_counter()
        runner(singles[0])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"{name}: runs {runner.runtime}; compile + first call {1e3 * cpu:.1f} ms CPU, "
            f"{1e3 * wall:.1f} ms wall; largest logit difference "
            f"{np.abs(runner(thumbs) - weights.logits(thumbs)).max():.1e}"
        )
        work[f"{name} numpy, batch 1"] = (weights.logits, singles, 1)
        work[f"{name} {runner.runtime}, batch 1"] = (runner, singles, 1)
        work[f"{name} numpy, batch 32"] = (weights.logits, batches, 32)
        work[f"{name} {runner.runtime}, batch 32"] = (runner, batches, 32)
    work["image_statistics, np.percentile"] = (_old_statistics, units, 1)
    work["image_statistics, low_high"] = (image_statistics, units, 1)
    work["percentiles alone, np.percentile"] = (lambda u: np.percentile(u, [1, 99]), units, 1)
    work["percentiles alone, low_high"] = (low_high, units, 1)
    (gate_numpy, gate_fast, gate_info), (heads_numpy, heads_fast, _) = nets.values()
    before, now = _decode_stages(
        (InputGate(gate_numpy, gate_info, serialize=False), AppearanceHeads(heads_numpy)),
        (InputGate(gate_fast, gate_info, serialize=False), AppearanceHeads(heads_fast)),
    )
    work["decode stage, before"] = (before, paths, 1)
    work["decode stage, now"] = (now, paths, 1)

    times: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(args.rounds):
        for name, (function, items, per) in work.items():
            times[name].append(_cpu_ms_per_item(function, items) / per)
    median = {name: statistics.median(values) for name, values in times.items()}
    print("\nCPU ms per image (median of rounds):")
    for name, value in median.items():
        print(f"  {name:40s} {value:7.3f}")
    print("\nratios (new / old, same run):")
    for name in ("gate", "appearance"):
        for batch in (1, 32):
            fast = [k for k in median if k.startswith(f"{name} ") and k.endswith(f"batch {batch}")]
            new = median[fast[-1]]
            print(f"  {name} batch {batch}: {new / median[fast[0]]:.2f} ({fast[-1]})")
    for what in ("image_statistics", "percentiles alone"):
        new, old = median[f"{what}, low_high"], median[f"{what}, np.percentile"]
        print(f"  {what}: {new / old:.2f}")
    stage = median["decode stage, now"] / median["decode stage, before"]
    print(f"  decode stage: {stage:.2f}")
    print(f"\nload average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
