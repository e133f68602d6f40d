"""Spark workers leave thread placement to the OS (``worker_model.unpin_openvino``):
OpenVINO pinned every worker's one inference thread to core 0, so all the workers of a
machine took turns on one core. Checked in a child process (the OpenVINO core is one per
process) and, for the order, in this one without OpenVINO."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.paths import REPO_ROOT
from xraydesk.model.card import ModelCard
from xraydesk.spark import worker_model

CHILD = """
import numpy as np
from xraydesk.runtime.openvino_backend import core, import_openvino
from xraydesk.spark.worker_model import unpin_openvino
ov = import_openvino()
before = core().get_property("CPU", "ENABLE_CPU_PINNING")
unpin_openvino()
x = ov.opset13.parameter([1, 4], np.float32)
model = ov.Model([ov.opset13.relu(x)], [x])
compiled = core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT",
                                                "INFERENCE_NUM_THREADS": 1})
print(before, compiled.get_property("ENABLE_CPU_PINNING"))
"""


def test_a_workers_openvino_does_not_pin_its_threads():
    pytest.importorskip("openvino")
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, compiled = done.stdout.split()
    assert compiled == "False", done.stdout
    assert before == "True"  # OpenVINO's own default on Linux: why this is needed


def test_pinning_is_off_before_the_model_is_compiled(monkeypatch, test_model_path):
    calls: list[str] = []
    monkeypatch.setattr(worker_model, "unpin_openvino", lambda: calls.append("unpin"))

    def backend(*_args, **_kwargs):
        calls.append("compile")
        raise RuntimeError("stop here")

    monkeypatch.setattr(worker_model, "select_backend", backend)
    monkeypatch.setattr(worker_model, "worker_runtime", lambda: None)
    monkeypatch.setattr(worker_model, "_MODELS", {})
    ref = worker_model.ModelRef.of(ModelCard.read(test_model_path), device="cpu")
    with pytest.raises(RuntimeError, match="stop here"):
        worker_model.loaded_model(ref)
    assert calls == ["unpin", "compile"]


def test_a_worker_on_torch_does_not_start_openvino(monkeypatch, test_model_path):
    """Under an address-space limit the worker runs torch (worker_memory): no OpenVINO."""
    calls: list[str] = []
    monkeypatch.setattr(worker_model, "unpin_openvino", lambda: calls.append("unpin"))
    monkeypatch.setattr(worker_model, "select_backend", _stop)
    monkeypatch.setattr(worker_model, "worker_runtime", lambda: "torch")
    monkeypatch.setattr(worker_model, "_MODELS", {})
    ref = worker_model.ModelRef.of(ModelCard.read(test_model_path), device="cpu")
    with pytest.raises(RuntimeError):
        worker_model.loaded_model(ref)
    assert calls == []


def _stop(*_args, **_kwargs):
    raise RuntimeError("stop here")
