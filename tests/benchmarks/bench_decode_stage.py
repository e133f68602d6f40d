"""Issue 28's decode stage, CPU per image and per component: this tree against a git
revision (by default the parent of the first commit that touched the stage for issue 28's
decode-stage cut), on the same films, in interleaved rounds.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_decode_stage.py [--base REV]
        [--films 300] [--other 100] [--rounds 5]

Why a revision and not a copy of the old functions: the stage is a dozen small steps,
and what it costs is their sum in place (each step finds the image its predecessor left
in the cache), so the baseline is the old code itself. ``git archive`` writes REV's
``xraydesk`` package to a temporary folder (the repository is only read) and two child
processes, one per tree, run ``batch.prepare.Preparer`` (models/chest-3class, no results
database) on ``--films`` kermany-pediatric films (RGB JPEG) and ``--other``
covid19-radiography films (grey JPEG) from ../shared/data; the parent asks them for a
round in turn (old, new, new, old, old, new ...), so both see the same load.

Per round, each child times the whole ``Preparer.__call__`` over all films without any
instrument (``time.thread_time``: the calling thread's CPU, which is where OpenVINO runs
the gate at one thread), then once more with every step the stage calls wrapped in a
timer: the file check, the hash (with the read, where the tree reads each file once), the
decode (``load_xray``), the render, the thumbnail, the image statistics, the gate's and
the appearance heads' networks and rules, the model input (``from_unit``); "rest" is the
whole minus those. A step the tree does not have is left blank. Figures are the median
over ``--rounds``; on a busy machine compare old and new of the same run only, and name
the CPU (printed first).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
BASE = "bccf789"  # the tree before issue 28's decode-stage cut
# (label, module, attribute): the steps the stage calls, wrapped in the child's tree
STEPS = (
    ("check_file", "xraydesk.batch.prepare", "check_file"),
    ("sha256", "xraydesk.batch.prepare", "content_hash"),
    ("read + sha256", "xraydesk.batch.prepare", "_hashed"),
    ("load_xray", "xraydesk.batch.prepare", "load_xray"),
    ("render", "xraydesk.imaging.xray", "XRay.render"),
    ("unit_thumbnail", "xraydesk.batch.prepare", "unit_thumbnail"),
    ("image_statistics", "xraydesk.batch.prepare", "image_statistics"),
    ("gate decide", "xraydesk.trust.gate", "InputGate.decide"),
    ("appearance estimate", "xraydesk.trust.appearance", "AppearanceHeads.estimate"),
    ("gate + appearance", "xraydesk.trust.thumb_nets", "ThumbNets.judge"),
    ("from_unit", "xraydesk.model.preprocessing", "Preprocessing.from_unit"),
)


def films(kermany: int, other: int) -> list[Path]:
    out = []
    for pool, count in (("kermany-pediatric", kermany), ("covid19-radiography", other)):
        with open(DATA / pool / "manifest.csv", newline="", encoding="utf-8") as fh:
            out += [DATA / pool / row["path"] for row in list(csv.DictReader(fh))[:count]]
    return out


def _timed(function: Callable, totals: dict[str, float], label: str) -> Callable:
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            totals[label] += time.thread_time() - start

    return wrapper


def child(tree: str, paths: list[Path]) -> None:
    """Answer each line on stdin with one round's figures (JSON, ms per image)."""
    import importlib

    sys.path.insert(0, tree)
    os.environ["XRAYDESK_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-decode-")
    from xraydesk.batch.prepare import Preparer
    from xraydesk.classifier import Classifier

    assert Path(sys.modules["xraydesk"].__file__).is_relative_to(tree), "wrong tree imported"
    classifier = Classifier.load(ROOT / "models" / "chest-3class.json", "cpu")
    stage = Preparer(classifier, None, "bench", threading.Event())
    for path in paths[:64]:  # the gate's networks compile after 32 images
        stage(path)
    totals = dict.fromkeys([label for label, *_ in STEPS], 0.0)
    plain, wrapped = {}, {}
    for label, module_name, attribute in STEPS:
        try:
            owner = importlib.import_module(module_name)
        except ImportError:
            continue
        *outer, name = attribute.split(".")
        for part in outer:
            owner = getattr(owner, part, None)
        if owner is not None and hasattr(owner, name):
            plain[label] = (owner, name, getattr(owner, name))
            wrapped[label] = _timed(getattr(owner, name), totals, label)
    for _ in sys.stdin:
        start = time.thread_time()
        for path in paths:
            stage(path)
        whole = time.thread_time() - start
        for label, (owner, name, _) in plain.items():
            setattr(owner, name, wrapped[label])
        totals.update(dict.fromkeys(totals, 0.0))
        start = time.thread_time()
        for path in paths:
            stage(path)
        instrumented = time.thread_time() - start
        for _label, (owner, name, function) in plain.items():
            setattr(owner, name, function)
        row = {"Preparer.__call__": whole}
        row.update({label: totals[label] for label in plain if totals[label]})  # called
        row["rest"] = instrumented - sum(totals.values())
        print(json.dumps({k: 1e3 * v / len(paths) for k, v in row.items()}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BASE, help="the git revision to compare with")
    parser.add_argument("--films", type=int, default=300, help="kermany-pediatric films")
    parser.add_argument("--other", type=int, default=100, help="covid19-radiography films")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    paths = films(args.films, args.other)
    if args.child:
        child(args.child, paths)
        return 0

    sys.path.insert(0, str(ROOT))
    from tests.benchmarks.machine import cpu_name, load_average

    print(f"CPU: {cpu_name()}")
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="bench-decode-base-") as base:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.base, "xraydesk"],
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(base, filter="data")
        trees = {f"old ({args.base})": base, "new (this tree)": str(ROOT)}
        common = ["--films", str(args.films), "--other", str(args.other)]
        children = {
            name: subprocess.Popen(
                [sys.executable, __file__, "--child", tree, *common],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            for name, tree in trees.items()
        }
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for turn in range(args.rounds):
            order = list(children.items())
            for name, process in order[:: 1 if turn % 2 == 0 else -1]:  # each goes first
                process.stdin.write("round\n")
                process.stdin.flush()
                rows[name].append(json.loads(process.stdout.readline()))
        for process in children.values():
            process.stdin.close()
            process.wait()
    print(f"{len(paths)} films; CPU ms per image, median of {args.rounds} interleaved rounds")
    labels = list(dict.fromkeys(k for runs in rows.values() for run in runs for k in run))
    names = list(trees)
    print(f"{'step':22}" + "".join(f"{n:>22}" for n in names) + f"{'new - old':>11}")
    for label in labels:
        values = [
            statistics.median(r.get(label, 0.0) for r in rows[n])
            if any(label in r for r in rows[n])
            else None
            for n in names
        ]
        cells = "".join(f"{v:22.3f}" if v is not None else f"{'-':>22}" for v in values)
        diff = f"{values[1] - values[0]:+11.3f}" if None not in values else ""
        print(f"{label:22}{cells}{diff}")
    whole = [statistics.median(r["Preparer.__call__"] for r in rows[n]) for n in names]
    print(f"new / old (whole stage): {whole[1] / whole[0]:.2f}")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
