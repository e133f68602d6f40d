"""A run killed with SIGKILL keeps every row it reported and the next run finishes the rest;
memory stays flat over a 5,000-file folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.batch_helpers import write_png
from tests.paths import REPO_ROOT
from xraydesk.batch.database import ResultStore
from xraydesk.batch.run import BatchOptions, BatchRun
from xraydesk.classifier import Classifier
from xraydesk.cli import main

CHILD = textwrap.dedent(
    """
    import sys, time
    from xraydesk.batch.run import BatchOptions, BatchRun
    from xraydesk.classifier import Classifier

    classifier = Classifier.load(sys.argv[2], device="cpu")
    options = BatchOptions(recursive=True, batch_size=4)
    # slowed down so the parent can kill it part-way, whatever the machine's speed
    batch = BatchRun([sys.argv[1]], classifier, options, on_progress=lambda p: time.sleep(0.2))
    for row in batch.rows():
        print(row.path, flush=True)
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkill_loses_no_reported_row_and_rerun_finishes(tmp_path, test_model_path, capsys):
    folder = tmp_path / "ward"
    for i in range(40):
        write_png(folder / f"p{i:02d}.png", seed=i)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(folder), str(test_model_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    reported = []
    try:
        for line in child.stdout:
            reported.append(Path(line.strip()))
            if len(reported) == 12:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(timeout=60)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(reported) == 12

    with ResultStore() as store:
        killed = store.runs()[0]
        assert killed.status == "interrupted"  # recorded as running, its process is gone
        stored = {row.path: row for row in store.iter_rows(killed.id)}
        assert store.integrity_ok()
    assert set(reported) <= set(stored)  # every reported row was committed first
    assert len(stored) < 40

    args = ["classify", str(folder), "-r", "--json", "--model", str(test_model_path)]
    assert main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["path"]).name for r in rows] == [f"p{i:02d}.png" for i in range(40)]
    for row in rows:
        earlier = stored.get(Path(row["path"]))
        assert row["reused"] == (earlier is not None)
        if earlier is not None:
            assert row["probabilities"] == earlier.probabilities
    with ResultStore() as store:
        rerun = store.runs()[0]
        assert rerun.status == "completed"
        assert (rerun.reused, rerun.classified) == (len(stored), 40 - len(stored))


class _Tiny(nn.Module):
    """A model too small to matter: this test measures the pipeline's memory, not torch's."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_memory_stays_flat_over_5000_files(tmp_path, test_classifier):
    folder = tmp_path / "archive"
    for i in range(5000):
        write_png(folder / f"{i // 500:02d}" / f"f{i:04d}.png", seed=i, size=(24, 20))
    classifier = Classifier(_Tiny().eval(), test_classifier.card, test_classifier.device)
    samples: list[tuple[int, float]] = []
    batch = BatchRun(
        [folder],
        classifier,
        BatchOptions(recursive=True),
        on_progress=lambda p: samples.append((p.done, _rss_mib())),
    )
    count = sum(1 for _ in batch.rows())
    assert count == 5000 and batch.summary.classified == 5000
    after_1000 = next(rss for done, rss in samples if done >= 1000)
    peak = max(rss for _, rss in samples)
    assert peak - after_1000 < 40, f"RSS grew from {after_1000:.0f} to {peak:.0f} MiB"
    with ResultStore() as store:
        assert store.row_count(batch.run_id) == 5000
