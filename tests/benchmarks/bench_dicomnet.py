"""DICOM node throughput: images/s from the first byte received to the last worklist row,
against the batch engine on the same files in the same run.

    python tests/benchmarks/bench_dicomnet.py --data ../shared/data [--count 200]

200 DICOM files are made in a temporary folder from the real samples (samples/dicom,
1024 x 1024, JPEG Baseline and uncompressed), each with new Study/Series/SOP Instance UIDs.
Then, with the same model (default: the bundled default model, on the CPU unless
--device says otherwise):

1. the batch engine (``xraydesk.batch.BatchRun``, not recording) over the folder;
2. a ``StorageNode`` in this process while another process sends the files by C-STORE
   (one association, as a PACS does); the rate is files / (last worklist row committed -
   the sender's connection opened), so it includes the network, storing each file, the
   worklist commits and classification;
3. the batch engine again (the machine's load may change: the mean of 1 and 3 is used).

Prints both rates and their ratio; exits 1 when the node is more than 20 % slower.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

TARGET = 0.8  # node rate / batch rate
SAMPLES = (
    "siim-cr-jpeg-baseline.dcm",
    "rsna-cr-jpeg-baseline.dcm",
    "nih-dx-uncompressed.dcm",
    "siim-cr-jpeg-baseline-tagged-monochrome1.dcm",
)
SENDER = """
import logging
import sys
from pathlib import Path
logging.basicConfig(level=logging.WARNING)  # pynetdicom's warnings: a NullHandler hid them
from xraydesk.dicomnet import NodeConfig, make_node, send_files
files = sorted(Path(sys.argv[1]).glob("*.dcm"))
outcome = send_files(NodeConfig(ae_title="BENCHSCU"),
                     make_node("node", "XRAYDESK", "127.0.0.1", int(sys.argv[2])), files)
sys.exit(0 if outcome.ok and outcome.completed == len(files) else 1)
"""


def make_files(samples: Path, folder: Path, count: int) -> list[Path]:
    sources = [pydicom.dcmread(samples / "dicom" / name) for name in SAMPLES]
    files = []
    for k in range(count):
        ds = sources[k % len(sources)]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = folder / f"{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def batch_rate(folder: Path, classifier) -> float:
    from xraydesk.batch import BatchOptions, BatchRun

    options = BatchOptions(record=False, skip_known=False, count_total=False)
    summary = BatchRun([folder], classifier, options).run()
    assert summary.failed == 0, summary
    return summary.classified / summary.seconds


def node_rate(folder: Path, classifier, count: int) -> tuple[float, float]:
    from xraydesk.dicomnet import NodeConfig, StorageNode, Worklist

    config = NodeConfig(port=0, allowed_ae_titles=("BENCHSCU",))
    with StorageNode(config, classifier) as node:
        sender = subprocess.run(
            [sys.executable, "-c", SENDER, str(folder), str(node.port)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=False,
        )
        assert sender.returncode == 0, "the sender failed"
        send_done = time.monotonic()
        assert node.wait_idle(600)
        stats = node.stats
        with Worklist() as worklist:
            assert worklist.count("classified") == count, worklist.count()
    assert stats.first_byte is not None
    return stats.rate(), send_done - stats.first_byte


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XRAYDESK_DATA_DIR"] = str(Path(tmp) / "data")
        from xraydesk.classifier import Classifier
        from xraydesk.model.library import resolve_model

        card = resolve_model(args.model)
        classifier = Classifier.load(card, device=args.device)
        folder = Path(tmp) / "files"
        folder.mkdir()
        make_files(args.data / "samples", folder, args.count)
        print(
            f"{args.count} files, model {card.label} on {classifier.device.label}, "
            f"{os.cpu_count()} CPUs"
        )
        first = batch_rate(folder, classifier)
        print(f"batch engine:         {first:6.1f} images/s")
        node, sending = node_rate(folder, classifier, args.count)
        print(f"node, byte to row:    {node:6.1f} images/s (the sender took {sending:.1f} s)")
        second = batch_rate(folder, classifier)
        print(f"batch engine again:   {second:6.1f} images/s")
    batch = (first + second) / 2
    ratio = node / batch
    print(f"node / batch engine:  {ratio:6.2f} (target >= {TARGET})")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
