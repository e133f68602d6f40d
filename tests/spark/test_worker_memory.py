"""A Spark worker under ``spark.executor.pyspark.memory`` (an address-space limit) maps
torch before pyarrow's allocator reserves its arenas, or torch no longer loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("torch")

CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from xraydesk.spark.worker_memory import map_torch_first
if sys.argv[1] == "first":
    map_torch_first()
import pyarrow as pa
pa.record_batch({"path": ["x.png"] * 32})  # the first Arrow batch a worker reads
try:
    import torch
except ImportError as exc:
    print("torch failed:", exc)
else:
    print("torch loaded")
"""


def _child(order: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, order], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS as Spark sets it")
def test_torch_is_mapped_before_the_first_arrow_batch():
    # measured on this project's torch (CUDA build): imported after the batch instead,
    # "libtorch_cuda.so: failed to map segment from shared object"
    assert _child("first") == "torch loaded"
