"""DICOM node throughput: images/s from the first byte received to the last worklist row,
against the batch engine on the same files, in interleaved rounds.

    python tests/benchmarks/bench_dicomnet.py --data ../shared/data [--count 200] [--rounds 3]

200 DICOM files are made in a temporary folder from the real samples (samples/dicom,
1024 x 1024, JPEG Baseline and uncompressed), each with new Study/Series/SOP Instance UIDs.
Then, with the same model (default: the bundled default model, on the CPU unless
--device says otherwise), after one untimed batch that compiles the engine's batch
backend, the runs alternate: engine, node, engine, node, ..., engine (``--rounds`` node
runs, one engine run more):

- the batch engine (``xraydesk.batch.BatchRun``, not recording) over the folder;
- a ``StorageNode`` in this process (its own worklist and store each round) while another
  process sends the files by C-STORE (one association, as a PACS does); the rate is files
  / (last worklist row committed - the sender's connection opened), so it includes the
  network, storing each file, the worklist commits and classification.

Why interleaved: on a 2-core machine shared with other work the load swings within a
minute; a node run compared with the engine runs just before and after it sees nearly the
same load, and the median of the rounds' ratios ignores one round caught by a swing.

Printed per round: both rates, the ratio (node / mean of the engine runs around it), the
sender's seconds, when the last file was in, the classify groups; then the CPU seconds per
image of each side (the engine; the node's process and the sender's), which the load
changes far less than the rates, and the CPU and load average. Exits 1 when the median
ratio is under 0.8 (the node more than 20 % slower, issue 16).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402
from xraydesk.dicomnet import StorageNode  # noqa: E402

TARGET = 0.8  # node rate / batch rate
WARM_UP = 32  # files of the untimed first batch (the batch backend compiles at its first use)
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


@dataclass
class EngineRun:
    rate: float  # images/s
    cpu: float  # CPU seconds of this process


@dataclass
class NodeRun:
    rate: float  # images/s, first byte to last row
    cpu: float  # CPU seconds of this process (receiving, storing, classifying)
    sender_cpu: float  # CPU seconds of the sending process
    sending: float  # the sender's connection to its end, as this process saw it
    received: float  # first byte to the last file stored
    groups: list[int] = field(default_factory=list)  # sizes of the classify groups


class TimedNode(StorageNode):
    """The node as shipped, noting the size of each group its classify thread takes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.groups: list[int] = []

    def classify_group(self, group: list) -> None:
        self.groups.append(len(group))
        super().classify_group(group)


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


def batch_run(inputs: list[Path], classifier) -> EngineRun:
    from xraydesk.batch import BatchOptions, BatchRun

    options = BatchOptions(record=False, skip_known=False, count_total=False)
    cpu = time.process_time()
    summary = BatchRun(inputs, classifier, options).run()
    cpu = time.process_time() - cpu
    assert summary.failed == 0, summary
    return EngineRun(summary.classified / summary.seconds, cpu)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def node_run(folder: Path, classifier, count: int, work: Path) -> NodeRun:
    from xraydesk.dicomnet import NodeConfig, Worklist
    from xraydesk.dicomnet.worklist import RECEIVED

    config = NodeConfig(port=0, allowed_ae_titles=("BENCHSCU",))
    stored: list[float] = []

    def on_item(item) -> None:
        if item.status == RECEIVED:
            stored.append(time.monotonic())

    work.mkdir()
    database = work / "results.sqlite"
    cpu, sender_cpu = time.process_time(), children_cpu()
    node = TimedNode(
        config, classifier, worklist_path=database, store_root=work / "dicom", on_item=on_item
    )
    with node:
        sender = subprocess.run(
            [sys.executable, "-c", SENDER, str(folder), str(node.port)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=False,
        )
        assert sender.returncode == 0, "the sender failed"
        send_done = time.monotonic()
        assert node.wait_idle(600)
    cpu, sender_cpu = time.process_time() - cpu, children_cpu() - sender_cpu
    stats = node.stats
    with Worklist(database) as worklist:
        assert worklist.count("classified") == count, worklist.count()
    shutil.rmtree(work)
    assert stats.first_byte is not None and stored
    return NodeRun(
        stats.rate(),
        cpu,
        sender_cpu,
        send_done - stats.first_byte,
        stored[-1] - stats.first_byte,
        node.groups,
    )


def per_image_ms(seconds: list[float], count: int) -> str:
    return f"{1000 * statistics.median(seconds) / count:.0f}"


def report(engines: list[EngineRun], nodes: list[NodeRun], count: int) -> float:
    """Print the summary; returns the median of the rounds' ratios."""
    ratios = [
        node.rate / ((engines[k].rate + engines[k + 1].rate) / 2) for k, node in enumerate(nodes)
    ]
    median = statistics.median(ratios)
    engine_rates = ", ".join(f"{e.rate:.1f}" for e in engines)
    print(f"engine runs:          {engine_rates} images/s")
    print(f"node runs:            {', '.join(f'{n.rate:.1f}' for n in nodes)} images/s")
    print(f"ratios per round:     {', '.join(f'{r:.2f}' for r in ratios)}")
    print(
        "CPU ms per image (medians): engine "
        f"{per_image_ms([e.cpu for e in engines], count)}; node "
        f"{per_image_ms([n.cpu for n in nodes], count)} in its process + "
        f"{per_image_ms([n.sender_cpu for n in nodes], count)} in the sender"
    )
    print(
        f"node / batch engine:  {median:6.2f} median of {len(ratios)} rounds (target >= {TARGET})"
    )
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument(
        "--rounds", type=int, default=3, help="node runs, each between two engine runs"
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.count < 1 or args.rounds < 1:
        parser.error("--count and --rounds must be at least 1")

    print(f"CPU: {cpu_name()}; load average at the start: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XRAYDESK_DATA_DIR"] = str(Path(tmp) / "data")
        from xraydesk.classifier import Classifier
        from xraydesk.model.library import resolve_model

        card = resolve_model(args.model)
        classifier = Classifier.load(card, device=args.device)
        folder = Path(tmp) / "files"
        folder.mkdir()
        files = make_files(args.data / "samples", folder, args.count)
        print(f"{args.count} files, model {card.label} on {classifier.device.label}")
        batch_run(files[:WARM_UP], classifier)  # untimed: compiles the batch backend
        engines = [batch_run([folder], classifier)]
        nodes: list[NodeRun] = []
        for k in range(args.rounds):
            nodes.append(node_run(folder, classifier, args.count, Path(tmp) / f"node{k}"))
            engines.append(batch_run([folder], classifier))
            node, around = nodes[-1], (engines[-2].rate + engines[-1].rate) / 2
            print(
                f"round {k + 1}: engine {engines[-2].rate:5.1f}, node {node.rate:5.1f}, "
                f"engine {engines[-1].rate:5.1f} images/s: {node.rate / around:.2f} "
                f"(sender {node.sending:.1f} s, all stored at {node.received:.1f} s, "
                f"groups {'+'.join(map(str, node.groups))})",
                flush=True,
            )
    median = report(engines, nodes, args.count)
    print(f"load average at the end: {load_average()}")
    return 0 if median >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
