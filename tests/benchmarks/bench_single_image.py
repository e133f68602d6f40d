"""Single-image latency: path -> probabilities and path -> Grad-CAM, as the viewer sees it.

    python tests/benchmarks/bench_single_image.py [--data ../shared/data] [--model CARD]

Without --model it uses a random 224 px ResNet-50 (speed does not depend on the weights).
Reports the median of several warm runs next to a baseline measured in the same run
(the classifier's own runtime on an already-preprocessed tensor: the path's ratio is then
its overhead, not a change of runtime or precision), so the figures can be compared
across noisy machines as ratios. A bare torch fp32 forward pass is printed beside it:
Grad-CAM runs on the torch network.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402
from tests.model_factory import make_test_model  # noqa: E402
from xraydesk.classifier import Classifier  # noqa: E402
from xraydesk.explain import grad_cam  # noqa: E402
from xraydesk.imaging import load_xray  # noqa: E402


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    card = args.model or make_test_model(Path(tempfile.mkdtemp()), size=224)
    classifier = Classifier.load(card, device="auto")
    size = classifier.preprocessing.size
    print(f"model {classifier.card.label} at {size} px on {classifier.device.label}")
    print(f"CPU: {cpu_name()}; load average {load_average()}")
    print(f"torch threads {torch.get_num_threads()}")
    ready = classifier.preprocess(
        load_xray(next((args.data / "kermany-pediatric").rglob("*.jpeg")))
    )[None]
    tensor = torch.from_numpy(ready).to(classifier.device.device)
    net = classifier.require_network("the torch reference")

    def bare_forward():
        with torch.inference_mode():
            net(tensor.contiguous(memory_format=torch.channels_last))

    base = median_ms(lambda: classifier.logits(ready), args.repeat)
    torch_fp32 = median_ms(bare_forward, args.repeat)
    print(f"baseline: the classifier's runtime on a ready tensor {base:7.1f} ms")
    print(f"reference: bare torch fp32 forward on it {torch_fp32:7.1f} ms")
    files = {
        "1024 px JPEG-Baseline DICOM": args.data / "samples/dicom/siim-cr-jpeg-baseline.dcm",
        "224 px JPEG": next((args.data / "kermany-pediatric").rglob("*.jpeg")),
    }
    for label, path in files.items():
        probs = median_ms(lambda p=path: classifier.predict(load_xray(p)), args.repeat)
        cam = median_ms(lambda p=path: grad_cam(classifier, load_xray(p)), max(3, args.repeat // 2))
        print(
            f"{label:28s} path->probabilities {probs:7.1f} ms ({probs / base:4.2f}x baseline)   "
            f"path->Grad-CAM {cam:7.1f} ms ({cam / base:4.2f}x baseline)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
