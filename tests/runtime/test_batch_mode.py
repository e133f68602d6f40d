"""The batch engine's backend (``runtime.batch_mode``): OpenVINO's throughput twin of the
viewer's backend, compiled once, with the same numbers; other runtimes as they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xraydesk.model.card import ModelCard
from xraydesk.runtime import openvino_backend
from xraydesk.runtime.backend import Backend, Outputs
from xraydesk.runtime.batch_mode import BATCH_MODE, batch_backend
from xraydesk.runtime.export import exported_graph
from xraydesk.runtime.recheck import RecheckedBackend

needs_openvino = pytest.mark.skipif(not openvino_backend.installed(), reason="needs OpenVINO")


class Other(Backend):
    runtime = "onnxruntime"
    precision = "fp32"

    def run(self, batch, activations: bool = True) -> Outputs:
        raise AssertionError("not run here")


def test_other_runtimes_are_used_as_they_are():
    other = Other()
    assert batch_backend(other) is other


@needs_openvino
def test_openvino_batches_run_on_a_throughput_twin_with_the_same_numbers(
    test_model_path: Path, tmp_path, monkeypatch
):
    from xraydesk.runtime.mixed import MixedOpenVinoBackend

    monkeypatch.setenv("XRAYDESK_RUNTIME_CACHE", str(tmp_path))
    graph = exported_graph(ModelCard.read(test_model_path)).path
    viewer = openvino_backend.OpenVinoBackend(graph, "fp32")
    twin = batch_backend(viewer, "throughput")
    assert twin.mode == "throughput" and viewer.mode == "latency"
    assert (twin.graph, twin.precision, twin.threads) == (graph, "fp32", 0)  # type: ignore[attr-defined]
    assert batch_backend(viewer, "throughput") is twin  # compiled once
    assert batch_backend(twin, "throughput") is twin
    x = np.random.default_rng(0).normal(size=(6, 1, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(twin.run(x).logits, viewer.run(x).logits)

    # the rechecked mixed path keeps its measured error and its fp32 rerun
    precisions = ("fp32", "fp32")  # any CPU: the structure, not the rounding, is tested
    mixed = MixedOpenVinoBackend(graph, body=precisions[0], tail=precisions[1])
    asked: list[str | None] = []

    def exact(mode: str | None) -> Backend:
        asked.append(mode)
        return openvino_backend.OpenVinoBackend(graph, "fp32", mode=mode or "latency")

    rechecked = RecheckedBackend(mixed, exact, 1.0, 0.5)
    batch = batch_backend(rechecked, "throughput")
    assert isinstance(batch, RecheckedBackend) and batch.error == 0.5
    assert batch.fast.mode == "throughput" and batch.fast.cut == mixed.cut
    assert batch.fast.precisions == precisions and not asked  # the exact one: lazily
    assert batch.exact().mode == "throughput" and batch.exact().precision == "fp32"
    assert asked == ["throughput"]  # built once, in the twin's mode, never in latency
    np.testing.assert_array_equal(batch.run(x).logits, rechecked.run(x).logits)
    assert batch_backend(rechecked, "latency") is rechecked
    assert BATCH_MODE in openvino_backend.MODES


def test_a_backend_in_its_own_mode_or_without_modes_is_its_own_twin():
    """``in_mode`` builds nothing where there is nothing to change: another runtime, or a
    recheck over one (their exact backend is never asked for)."""
    other = Other()
    assert other.mode is None and other.in_mode("throughput") is other
    rechecked = RecheckedBackend(other, lambda mode: pytest.fail("built"), 1.0, 0.5)
    assert rechecked.mode is None and batch_backend(rechecked) is rechecked


@needs_openvino
def test_the_batch_engine_asks_for_the_batch_mode(test_model_path: Path, tmp_path, monkeypatch):
    """``BatchModel`` runs an OpenVINO classifier's batches on the twin in ``BATCH_MODE``
    while the classifier itself (the viewer) keeps its latency backend; same numbers."""
    from xraydesk.batch.batch_model import BatchModel
    from xraydesk.classifier import Classifier
    from xraydesk.model.device import DeviceChoice

    monkeypatch.setenv("XRAYDESK_RUNTIME_CACHE", str(tmp_path))
    card = ModelCard.read(test_model_path)
    viewer = openvino_backend.OpenVinoBackend(exported_graph(card).path, "fp32")
    classifier = Classifier(None, card, DeviceChoice("cpu", "fp32", "CPU, fp32"), viewer)
    engine = BatchModel(classifier)
    assert engine.backend is batch_backend(viewer) and engine.backend.mode == BATCH_MODE
    assert classifier.backend is viewer and viewer.mode == "latency"
    x = np.random.default_rng(1).normal(size=(5, 1, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(engine.outputs(x).features, viewer.run(x).features)
