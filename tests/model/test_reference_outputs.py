"""The weights' outputs on seeded probes, saved with the card: every exported graph is
checked against them, so a model's first run needs no torch (issue 28, item 3)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.cli_child import run_cli
from xraydesk.errors import ModelError
from xraydesk.model.card import ModelCard
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.reference_outputs import PROJECTIONS, probe_inputs, reference_outputs
from xraydesk.model.saving import load_network


def test_probe_inputs_are_seeded_smooth_and_normalised():
    prep = Preprocessing(size=40, channels=3)
    first, again = probe_inputs(prep), probe_inputs(prep)
    assert first.shape == (4, 3, 40, 40) and first.dtype == np.float32
    assert np.array_equal(first, again)  # the same probes on every machine
    assert not np.array_equal(first, probe_inputs(prep, seed=14))
    unit = first[:, 0] * prep.std + prep.mean
    assert unit.min() >= -1e-6 and unit.max() <= 1 + 1e-6
    assert np.abs(np.diff(unit, axis=-1)).max() < 0.2  # smooth: no pixel noise
    assert np.array_equal(first[:, 0], first[:, 2])  # grey, copied to every channel


def test_saved_cards_carry_the_outputs_of_their_saved_weights(test_model_path: Path):
    card = ModelCard.read(test_model_path)
    saved = card.reference_outputs
    assert saved is not None
    assert np.asarray(saved.logits).shape == (4, len(card.classes))
    assert np.asarray(saved.features).shape == (4, PROJECTIONS)
    again = reference_outputs(load_network(card), card.preprocessing)
    assert max(saved.largest_difference_from(again).values()) < 1e-5
    raw = json.loads(test_model_path.read_text())
    assert "reference_outputs" in raw["integrity"]["covers"]  # an edit is caught


def test_outputs_of_other_weights_are_told_apart(test_model_path: Path, tmp_path: Path):
    from tests.model_factory import make_test_model

    card = ModelCard.read(test_model_path)
    other = ModelCard.read(make_test_model(tmp_path, seed=1))
    diff = card.reference_outputs.largest_difference_from(other.reference_outputs)
    assert min(diff.values()) > 1e-2


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda r: r.update(probes="noise"), "unknown probes"),
        (lambda r: r.update(logits=r["logits"][:2]), "reference_outputs.logits must be 4 x"),
        (lambda r: r["logits"][1].pop(), "malformed reference_outputs"),
        (lambda r: r["features"][0].__setitem__(0, "NaN"), "reference_outputs.features"),
        (lambda r: r.update(activations="x"), "reference_outputs"),
        (lambda r: r.pop("seed"), "malformed reference_outputs"),
        (lambda r: r.update(count=10**6), "reference_outputs"),
    ],
)
def test_hostile_reference_outputs_are_refused_naming_the_card(
    test_model_path: Path, tmp_path: Path, change, says: str
):
    data = json.loads(test_model_path.read_text())
    change(data["reference_outputs"])
    bad = tmp_path / "card.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=re.escape(str(bad))) as err:
        ModelCard.read(bad)
    assert says in str(err.value)


def test_an_edited_reference_is_an_edited_card(test_model_path: Path, tmp_path: Path):
    data = json.loads(test_model_path.read_text())
    data["reference_outputs"]["logits"][0][0] += 1.0
    edited = tmp_path / "card.json"
    edited.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="integrity hash mismatch"):
        ModelCard.read(edited)


def test_a_graph_unlike_the_reference_is_refused(test_model_path: Path, tmp_path: Path):
    """A graph of other weights fails the check against this card's reference."""
    from tests.model_factory import make_test_model
    from xraydesk.runtime.backend import RuntimeUnavailable
    from xraydesk.runtime.export import exported_graph
    from xraydesk.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from xraydesk.runtime.probes import check_graph_against_card

    pytest.importorskip("onnxruntime")
    card = ModelCard.read(test_model_path)
    other = ModelCard.read(make_test_model(tmp_path, seed=1))
    own = OnnxRuntimeBackend(exported_graph(card).path, "fp32")
    assert check_graph_against_card(own, card.reference_outputs, card.preprocessing) < 1e-4
    wrong = OnnxRuntimeBackend(exported_graph(other).path, "fp32")
    with pytest.raises(RuntimeUnavailable, match="reference outputs"):
        check_graph_against_card(wrong, card.reference_outputs, card.preprocessing)


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_the_first_classify_of_a_model_imports_no_torch(
    test_model_path: Path, tmp_path: Path, samples_dir: Path, runtime: str
):
    """A fresh data folder and graph cache: the graph is exported, checked against the
    card's reference outputs and used, and torch is never imported (the full build)."""
    pytest.importorskip(runtime)
    cache = tmp_path / "cache"
    dicom = samples_dir / "dicom" / "nih-dx-uncompressed.dcm"
    run = run_cli(
        tmp_path,
        *("classify", str(dicom), "--model", str(test_model_path), "--json"),
        XRAYDESK_DATA_DIR=str(tmp_path / "data"),
        XRAYDESK_RUNTIME_CACHE=str(cache),
        XRAYDESK_RUNTIME=runtime,
        XRAYDESK_PRECISION="fp32",
    )
    assert run.code == 0, run.stderr[-3000:]
    assert "torch" not in run.modules, "the first run imported torch"
    assert list(cache.glob("*.checked")), "the new graph was not checked"
    if runtime == "openvino":  # its own IR, built with OpenVINO (issue 28 item 3)
        assert "onnx" not in run.modules, "OpenVINO's first run imported onnx"
        assert not list(cache.glob("*.onnx")), "an ONNX graph was written for OpenVINO"
