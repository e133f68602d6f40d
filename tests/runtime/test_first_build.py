"""A model's first build (issue 28, item 3): the new graph is checked against the card's
reference outputs at fp32 before the chosen backend is used (the fp32 backend itself where
that is the choice, compiled once), and a graph that fails the check is never used,
whichever path built it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from xraydesk.model.card import ModelCard
from xraydesk.runtime import openvino_backend, select
from xraydesk.runtime.backend import RuntimeUnavailable
from xraydesk.runtime.export import SUFFIXES, checked_marker, graph_path

pytestmark = pytest.mark.skipif(not openvino_backend.installed(), reason="needs OpenVINO")

MIXED = select.Candidate("openvino", "bf16", mixed=True)
FP32 = select.Candidate("openvino", "fp32")
needs_bf16 = pytest.mark.skipif(
    not (openvino_backend.installed() and openvino_backend.cpu_has_bf16()),
    reason="this CPU has no native bf16",
)
BOTH = [pytest.param(MIXED, id="mixed", marks=needs_bf16), pytest.param(FP32, id="fp32")]


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XRAYDESK_RUNTIME_CACHE", str(tmp_path / "graphs"))
    return tmp_path / "graphs"


def _paths(card: ModelCard) -> tuple[Path, Path]:
    """The graph OpenVINO runs (its own IR, no ONNX) and its check's marker."""
    prep = card.preprocessing
    graph = graph_path(card.weights_sha256, prep.channels, prep.size, SUFFIXES["ir"])
    return graph, checked_marker(graph)


def _with_reference_of(card: ModelCard, other: ModelCard) -> ModelCard:
    """``card`` holding another model's reference outputs: its graph fails the check."""
    return dataclasses.replace(card, reference_outputs=other.reference_outputs)


@pytest.mark.parametrize("candidate", BOTH)
def test_a_first_build_is_checked_and_marked(
    candidate: select.Candidate, test_model_path: Path, own_cache: Path
):
    card = ModelCard.read(test_model_path)
    backend = select.build_backend(candidate, card)
    graph, marker = _paths(card)
    assert graph.is_file() and graph.with_suffix(".bin").is_file() and marker.is_file()
    assert not graph.with_suffix(".onnx").exists()  # no ONNX written for OpenVINO
    size = card.preprocessing.size
    out = backend.run(np.zeros((2, card.preprocessing.channels, size, size), np.float32))
    assert out.logits.shape == (2, len(card.classes))
    # the compiled cache holds what is kept (the mixed path's two parts, or the fp32
    # graph), not the whole fp32 graph compiled for the mixed path's check and dropped
    blobs = list(own_cache.rglob("*.blob"))
    assert len(blobs) == (2 if candidate.mixed else 1), blobs


@pytest.mark.parametrize("candidate", BOTH)
def test_a_graph_that_fails_its_check_is_refused_and_deleted(
    candidate: select.Candidate, test_model_path: Path, tmp_path: Path, own_cache: Path
):
    from tests.model_factory import make_test_model

    card = ModelCard.read(test_model_path)
    other = ModelCard.read(make_test_model(tmp_path, seed=1))
    with pytest.raises(RuntimeUnavailable, match="reference outputs"):
        select.build_backend(candidate, _with_reference_of(card, other))
    graph, marker = _paths(card)
    assert not graph.exists() and not marker.exists()
    assert not graph.with_suffix(".bin").exists()  # the IR's weights went with it
