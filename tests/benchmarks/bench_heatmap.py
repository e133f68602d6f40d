"""File -> probabilities + heat map: the old viewer path against one forward pass (issue 13).

    python tests/benchmarks/bench_heatmap.py [--data ../shared/data] [--model CARD]
                                             [--images 20] [--rounds 1]

Old path (before issue 13): load the file, ``Classifier.predict`` (one forward pass on
torch), then ``grad_cam`` (the grad-cam package: a second forward and a backward pass).
New path: load the file, ``Classifier.forward`` once, then the probabilities and the
class activation map from that pass (``explain.cam``). The new path is timed on the same
torch network (the method alone) and on the exported CPU runtime ``auto`` picks (the
light build's default, opt-in in the full build: OpenVINO or ONNX Runtime where one is
installed and was measured faithful), where there is one.

Real test-split images of the model (224 px JPEGs and PNGs), each run through every path
in turn, ``--rounds`` times, the order rotating; the medians over all runs are compared
as ratios measured in the same run, so a busy machine slows every path alike. The CAM
is checked against the Grad-CAM of the same image on the way (correlation).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.machine import cpu_name  # noqa: E402
from xraydesk.classifier import Classifier, Prediction  # noqa: E402
from xraydesk.explain import class_activation_map, grad_cam  # noqa: E402
from xraydesk.explain.cam import CamResult  # noqa: E402
from xraydesk.imaging import load_xray  # noqa: E402
from xraydesk.trainer.split import read_split  # noqa: E402

Path_ = Callable[[Path], tuple[Prediction, CamResult]]


def old_path(classifier: Classifier) -> Path_:
    def run(path: Path) -> tuple[Prediction, CamResult]:
        xray = load_xray(path)
        prediction = classifier.predict(xray)
        return prediction, grad_cam(classifier, xray, prediction.predicted)

    return run


def new_path(classifier: Classifier) -> Path_:
    def run(path: Path) -> tuple[Prediction, CamResult]:
        start = time.perf_counter()
        xray = load_xray(path)
        out = classifier.forward(classifier.preprocess(xray)[None])
        probs = classifier.probabilities(out.logits)[0]
        prediction = classifier.prediction_from(probs, time.perf_counter() - start)
        return prediction, class_activation_map(classifier, xray, prediction.predicted, out)

    return run


def test_images(card: Path, data: Path, count: int) -> list[Path]:
    samples, splits = read_split(card.with_suffix("") / "split.csv")
    test = [s for s, split in zip(samples, splits, strict=True) if split == "test"]
    rng = np.random.default_rng(13)
    return [data / test[i].path for i in rng.choice(len(test), size=count, replace=False)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "chest-3class.json")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    torch_classifier = Classifier.load(args.model, device="auto", runtime="torch")
    default_classifier = Classifier.load(args.model, device="auto", runtime="auto")
    paths: dict[str, Path_] = {
        "old: predict + grad_cam (torch)": old_path(torch_classifier),
        "new: one forward + CAM (torch)": new_path(torch_classifier),
    }
    if default_classifier.runtime is not None:
        label = f"new: one forward + CAM ({default_classifier.device.label})"
        paths[label] = new_path(default_classifier)
    images = test_images(args.model, args.data, args.images)

    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores, load {os.getloadavg()[0]:.1f})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"model {torch_classifier.card.label} at {torch_classifier.preprocessing.size} px; "
        f"torch on {torch_classifier.device.label}, default {default_classifier.device.label}"
    )
    print(f"{len(images)} test-split images x {args.rounds} rounds, median per path")

    for run in paths.values():  # warm-up: first-call allocations, the runtime's graph
        run(images[0])
    times: dict[str, list[float]] = {name: [] for name in paths}
    correlations: list[float] = []
    names = list(paths)
    for round_ in range(args.rounds):
        for i, image in enumerate(images):
            shift = (i + round_) % len(names)
            maps: dict[str, CamResult] = {}
            for name in names[shift:] + names[:shift]:  # no path always runs first
                start = time.perf_counter()
                _, cam = paths[name](image)
                times[name].append(time.perf_counter() - start)
                maps[name] = cam
            old = maps[names[0]].heatmap.ravel()
            for name in names[1:]:
                correlations.append(float(np.corrcoef(old, maps[name].heatmap.ravel())[0, 1]))

    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    base = medians[names[0]]
    for name, ms in medians.items():
        print(f"  {name:46s} {ms:8.1f} ms   {base / ms:5.2f}x faster than old")
    print(f"CAM vs Grad-CAM of the same image: correlation min {min(correlations):.5f}")
    best = max(base / ms for ms in list(medians.values())[1:])
    print(f"speed-up of the viewer path: {best:.2f}x (target >= 4x) on {cpu_name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
