"""The int8 OpenVINO graph (issue 28): calibrated on films, its convolutions really run
in int8 and its probabilities stay close to the fp32 graph's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xraydesk.model.card import ModelCard
from xraydesk.model.probabilities import softmax
from xraydesk.runtime import openvino_backend
from xraydesk.runtime.export import exported_graph
from xraydesk.runtime.int8_graph import (
    KEPT_OUT,
    STEM_CONV,
    calibration_ranges,
    convolution_names,
    quantized_names,
    write_int8_ir,
)

pytestmark = pytest.mark.skipif(not openvino_backend.installed(), reason="OpenVINO not installed")


def _films(card: ModelCard, count: int, seed: int) -> np.ndarray:
    prep = card.preprocessing
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, prep.channels, prep.size, prep.size)).astype(np.float32)


def test_the_quantized_convolutions_are_all_but_the_stem_and_the_kept_out_stage():
    names = convolution_names()
    assert len(names) == 53 and names[0] == STEM_CONV  # ResNet-50: 49 + 4 downsamples
    quantized = quantized_names()
    assert KEPT_OUT == ("layer1",)
    assert STEM_CONV not in quantized and not any(n.startswith("layer1.") for n in quantized)
    assert len(quantized) == 53 - 1 - 10  # layer1: 3 blocks of 3, one downsample
    assert len(quantized_names(())) == 52
    # a prefix is whole name parts: "layer2.0" keeps out that block, not others
    some = quantized_names(("layer2.0",))
    assert "layer2.0.conv1" not in some and "layer2.0.downsample.0" not in some
    assert "layer2.1.conv1" in some and "layer1.0.conv1" in some and len(some) == 48


def test_the_int8_graph_stays_close_to_fp32_and_runs_in_int8(test_model_path: Path, tmp_path):
    card = ModelCard.read(test_model_path)
    ranges = calibration_ranges(card, _films(card, 24, seed=1))
    assert list(ranges) == quantized_names()
    assert all(np.isfinite(v) and v > 0 for v in ranges.values())

    xml = tmp_path / "int8.xml"
    write_int8_ir(card, ranges, xml)
    int8 = openvino_backend.OpenVinoBackend(xml, "int8", cached=False)
    fp32 = openvino_backend.OpenVinoBackend(exported_graph(card, "ir").path, "fp32", cached=False)
    films = _films(card, 16, seed=2)  # not the calibration films
    exact, quantized = (b.run(films, activations=False).logits for b in (fp32, int8))
    p_exact, p_int8 = (softmax(x, card.temperature) for x in (exact, quantized))
    diff = np.abs(p_exact - p_int8)
    assert diff.max() < 0.05 and diff.mean() < 0.01
    assert not np.array_equal(exact, quantized)  # rounded, so not the fp32 graph itself

    # OpenVINO ran the quantized convolutions on u8 inputs, the rest not
    precisions = {}
    for op in int8.compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "Convolution":
            precisions[op.get_friendly_name()] = info["runtimePrecision"].astype(str)
    low = {name for name, p in precisions.items() if p in ("u8", "i8")}
    assert len(low) == len(ranges), precisions
    assert len(precisions) - len(low) == 11  # the stem and layer1's 10
