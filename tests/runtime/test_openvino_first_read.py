"""OpenVINO's first tensor read in a process is made once, under a lock, before any
inference thread reads outputs: four threads reading their first outputs at once hung
about a third of fresh processes (a one-time initialisation in OpenVINO's bindings that
takes the GIL inside its guard; ``openvino_backend._first_tensor_read``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.paths import REPO_ROOT
from xraydesk.runtime import openvino_backend

pytestmark = pytest.mark.skipif(not openvino_backend.installed(), reason="needs OpenVINO")

# Four requests of a tiny model, started together by a barrier, each reading its outputs
# for the first time in the process: the race that hung the batch engine's split.
RACE = textwrap.dedent(
    """
    import threading
    import numpy as np
    from xraydesk.runtime.openvino_backend import core, import_openvino
    ov = import_openvino()
    x = ov.opset13.parameter([-1, 4], ov.Type.f32, "x")
    compiled = core().compile_model(ov.Model([ov.opset13.relu(x)], [x], "t"), "CPU")
    requests = [compiled.create_infer_request() for _ in range(4)]
    barrier = threading.Barrier(4)
    def first_read(request):
        barrier.wait()
        outputs = request.infer({0: np.ones((2, 4), np.float32)})
        assert all(v.shape == (2, 4) for v in outputs.values())
    threads = [threading.Thread(target=first_read, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("done")
    """
)


@pytest.mark.parametrize("attempt", range(8))
def test_first_outputs_read_by_four_threads_at_once_do_not_hang(attempt: int):
    try:
        done = subprocess.run(
            [sys.executable, "-c", RACE],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("four threads reading their first OpenVINO outputs at once hung")
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]
