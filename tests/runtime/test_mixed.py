"""Issue 28 item 1: OpenVINO bf16 with the stem kept at fp32 (``runtime.mixed``), the
throughput mode for batches, and the selection of the rechecked mixed path only where its
verdict passed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xraydesk.model.card import ModelCard
from xraydesk.runtime import openvino_backend
from xraydesk.runtime.backend import RuntimeUnavailable
from xraydesk.runtime.export import exported_graph
from xraydesk.runtime.faithful import Faithfulness
from xraydesk.runtime.recheck import RecheckedBackend

pytestmark = pytest.mark.skipif(not openvino_backend.installed(), reason="needs OpenVINO")
needs_bf16 = pytest.mark.skipif(
    not (openvino_backend.installed() and openvino_backend.cpu_has_bf16()),
    reason="this CPU has no native bf16",
)


@pytest.fixture(scope="module")
def graph(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model's exported graph (64 px, random weights, calibrated batch norm), in
    the form OpenVINO runs it: its own IR (``export``)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XRAYDESK_RUNTIME_CACHE", str(tmp_path_factory.mktemp("mixed-cache")))
    try:
        return exported_graph(ModelCard.read(test_model_path), "ir").path
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def edge_graph(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model with a first convolution that, like a trained one, takes differences
    of neighbouring intensities (zero-sum kernels): on a smooth film its output is a small
    difference of large inputs, so rounding the input to bf16 is what costs (the
    mechanism measured on chest-3class, tests/benchmarks/bench_bf16_sources.py)."""
    from xraydesk.model.weights import load_state
    from xraydesk.runtime.onnx_graph import write_graph

    card = ModelCard.read(test_model_path)
    state = load_state(card.weights_path)
    w = state["conv1.weight"]
    state["conv1.weight"] = (w - w.mean(axis=(2, 3), keepdims=True)) * 8
    path = tmp_path_factory.mktemp("edge") / "edge.onnx"
    with path.open("wb") as out:
        write_graph(state, card.preprocessing.channels, card.preprocessing.size, out)
    return path


def _inputs(n: int = 12, size: int = 64) -> np.ndarray:
    """Smooth radiograph-like inputs in the normalised range, with fine detail that bf16
    rounding of the input loses."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(3 * xx + k) * np.cos(2 * yy - k) for k in range(n)])
    return (base + 0.05 * rng.normal(size=base.shape)).astype(np.float32)[:, None] * 1.7


def _precisions(compiled) -> dict[str, str]:
    """Node name -> the precision OpenVINO's runtime model says the node runs at."""
    out = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        out[op.get_friendly_name()] = info["runtimePrecision"].astype(str)
    return out


@needs_bf16
def test_the_stem_runs_at_fp32_and_the_rest_at_bf16(graph):
    """What OpenVINO itself reports: the first convolution at fp32 in the mixed path (bf16
    in plain bf16), the later convolutions and the head at bf16."""
    from xraydesk.runtime.mixed import MixedOpenVinoBackend

    mixed = MixedOpenVinoBackend(graph)
    body, tail = _precisions(mixed.body), _precisions(mixed.tail)
    assert body["conv1.out/WithoutBiases"] == "f32"
    assert "layer1.0.conv1.out/WithoutBiases" not in body  # the body is the stem alone
    assert tail["layer1.0.conv1.out/WithoutBiases"] == "bf16"
    assert tail["layer4.2.conv3.out/WithoutBiases"] == "bf16"
    plain = _precisions(openvino_backend.OpenVinoBackend(graph, "bf16").compiled)
    assert plain["conv1.out/WithoutBiases"] == "bf16"
    assert mixed.label == "OpenVINO, CPU, bf16, fp32 stem"


@needs_bf16
def test_the_fp32_stem_brings_the_outputs_closer_to_fp32(edge_graph):
    """On fixed inputs: the mixed path's outputs differ from plain bf16's and are nearer
    fp32's (the input is no longer rounded to bf16 before the first convolution)."""
    from xraydesk.runtime.mixed import MixedOpenVinoBackend

    graph = edge_graph
    x = _inputs() + 1.5  # bright: bf16's step there is 1/128
    exact = openvino_backend.OpenVinoBackend(graph, "fp32").run(x)
    plain = openvino_backend.OpenVinoBackend(graph, "bf16").run(x)
    mixed = MixedOpenVinoBackend(graph).run(x)
    assert not np.array_equal(mixed.features, plain.features)
    err_plain = np.abs(plain.features - exact.features).mean()
    err_mixed = np.abs(mixed.features - exact.features).mean()
    assert err_mixed < 0.8 * err_plain, (err_mixed, err_plain)


def test_splitting_the_graph_changes_nothing_at_one_precision(graph):
    """Both parts at fp32: the three outputs of the whole graph at fp32, to rounding. The
    cut loses no output and no path (the residual shortcuts cross no cut)."""
    from xraydesk.runtime.mixed import CUTS, MixedOpenVinoBackend

    x = _inputs(5)
    whole = openvino_backend.OpenVinoBackend(graph, "fp32").run(x)
    for cut in (CUTS["stem"], CUTS["head"]):  # the activations come out of either part
        backend = MixedOpenVinoBackend(graph, cut, body="fp32", tail="fp32")
        split = backend.run(x)
        for a, b in zip(split.__dict__.values(), whole.__dict__.values(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=cut)
        assert split.activations is not None
        assert backend.run(x, activations=False).activations is None


def test_an_unknown_cut_is_a_clear_error(graph):
    from xraydesk.runtime.mixed import MixedOpenVinoBackend

    with pytest.raises(RuntimeUnavailable, match="no node 'nowhere'"):
        MixedOpenVinoBackend(graph, "nowhere")


@pytest.mark.parametrize("per_stream", [1, 2, 3])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_throughput_mode_returns_the_latency_modes_logits(graph, precision, per_stream):
    """The batch split between streams (in ``per_stream`` slices each, taken by whichever
    stream is free), each slice on its own request, joined in order: the same numbers as
    one request for the whole batch."""
    if precision == "bf16" and not openvino_backend.cpu_has_bf16():
        pytest.skip("this CPU has no native bf16")
    x = _inputs(9)
    latency = openvino_backend.OpenVinoBackend(graph, precision)
    throughput = openvino_backend.OpenVinoBackend(
        graph, precision, mode="throughput", per_stream=per_stream
    )
    assert throughput.in_mode("latency").in_mode("throughput").per_stream == per_stream
    assert latency.streams == 1 and latency.mode == "latency"
    a, b = latency.run(x), throughput.run(x)
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.activations, b.activations)
    single = throughput.run(x[:1])  # one image: one request, whatever the streams
    np.testing.assert_array_equal(single.logits, a.logits[:1])


def test_an_unknown_mode_is_a_clear_error(graph):
    with pytest.raises(RuntimeUnavailable, match="no 'fast' mode"):
        openvino_backend.OpenVinoBackend(graph, "fp32", mode="fast")


@needs_bf16
def test_the_rechecked_mixed_path_is_built_only_from_its_own_verdict(test_model_path, monkeypatch):
    """``build_backend`` wraps the mixed graph in the recheck with the verdict's measured
    logit-difference error; without a measured error it refuses (and ``auto`` goes on)."""
    from xraydesk.runtime import select
    from xraydesk.runtime.mixed import MixedOpenVinoBackend

    card = ModelCard.read(test_model_path)
    candidate = select.Candidate("openvino", "bf16", recheck=True, mixed=True)
    seen = []

    def verdict(_sha, runtime, precision):
        seen.append(f"{runtime}/{precision}")
        return Faithfulness(100, 1.0, 0.0001, 0.004, logit_error=0.03)

    monkeypatch.setattr(select, "shipped_verdict", verdict)
    backend = select.build_backend(candidate, card, mode="throughput")
    assert isinstance(backend, RecheckedBackend) and backend.error == 0.03
    assert isinstance(backend.fast, MixedOpenVinoBackend) and backend.fast.mode == "throughput"
    assert backend.exact().precision == "fp32" and backend.exact().mode == "throughput"
    assert seen == ["openvino/bf16-fp32stem+fp32"]
    monkeypatch.setattr(select, "shipped_verdict", lambda *_: Faithfulness(100, 1, 0, 0))
    with pytest.raises(RuntimeUnavailable, match="no measured bf16 error"):
        select.build_backend(candidate, card)


def test_the_parts_are_saved_once_and_give_the_same_numbers(graph: Path, tmp_path: Path):
    """A new process compiles the saved parts (from OpenVINO's compiled cache) instead of
    reading and cutting the graph again; the numbers are those of the in-memory cut."""
    import shutil

    from xraydesk.runtime.mixed import STEM, MixedOpenVinoBackend, parts_folder, split_parts
    from xraydesk.runtime.openvino_backend import compiled_cache_dir

    copy = tmp_path / graph.name
    shutil.copy2(graph, copy)
    shutil.copy2(graph.with_suffix(".bin"), copy.with_suffix(".bin"))  # the IR's weights
    body, tail = split_parts(copy, STEM)
    assert Path(body).parent == parts_folder(copy) and Path(tail).is_file()
    assert Path(body).with_suffix(".bin").is_file() and Path(tail).with_suffix(".bin").is_file()
    made = Path(tail).stat().st_mtime_ns
    assert split_parts(copy, STEM) == (body, tail)  # found, not made again
    assert Path(tail).stat().st_mtime_ns == made
    assert not [p for p in parts_folder(copy).iterdir() if p.name.startswith(".")]

    x = _inputs()
    saved = MixedOpenVinoBackend(copy).run(x).logits
    assert any(compiled_cache_dir(body).iterdir())  # the compiled parts were cached
    again = MixedOpenVinoBackend(copy).run(x).logits  # compiled from the cache
    np.testing.assert_array_equal(saved, again)
    # a graph written again at the same path never meets the old graph's parts
    copy.write_bytes(copy.read_bytes())
    assert parts_folder(copy) != Path(body).parent


def test_exporting_the_same_weights_again_leaves_one_parts_folder(
    test_model_path: Path, tmp_path: Path, monkeypatch
):
    """The graph exported again (deleted after a failed check, or by hand) gets new parts
    at its first use; the export deletes the old ones (about 90 MB), however young, and
    never the parts of the graph as it now is. A backend compiled from the old parts
    runs on (OpenVINO read them when it compiled)."""
    from xraydesk.runtime import export
    from xraydesk.runtime.mixed import PARTS_DIR, MixedOpenVinoBackend, parts_folder

    monkeypatch.setenv("XRAYDESK_RUNTIME_CACHE", str(tmp_path))
    card = ModelCard.read(test_model_path)
    first = exported_graph(card, "ir").path
    running = MixedOpenVinoBackend(first, body="fp32", tail="fp32")  # any CPU
    old_parts = parts_folder(first)
    x = _inputs(4)
    before = running.run(x).logits
    assert old_parts.is_dir()

    for file in (first, first.with_suffix(".bin")):
        file.unlink()  # as select.build_backend does when a new graph fails its check
    again = exported_graph(card, "ir")  # the export prunes
    assert again.created and again.path == first
    assert parts_folder(again.path) != old_parts and not old_parts.exists()
    np.testing.assert_array_equal(running.run(x).logits, before)

    current = MixedOpenVinoBackend(again.path, body="fp32", tail="fp32")
    export.prune_cache()  # another export meanwhile: the parts in use stay
    assert list((tmp_path / PARTS_DIR).iterdir()) == [parts_folder(again.path)]
    twin = current.in_mode("throughput")  # compiled from the same saved parts
    np.testing.assert_array_equal(twin.run(x).logits, before)


def test_parts_of_a_read_only_folder_stay_in_memory(graph: Path, monkeypatch):
    """Where the parts cannot be saved the backend still runs, from the in-memory cut."""
    from xraydesk.runtime import mixed

    def refuse(model, xml):
        raise OSError("read-only file system")

    monkeypatch.setattr(mixed, "save_ir", refuse)
    monkeypatch.setattr(mixed, "parts_folder", lambda g: Path("/nonexistent-xraydesk") / "p")
    body, tail = mixed.split_parts(graph, mixed.STEM)
    assert not isinstance(body, str) and not isinstance(tail, str)  # ov.Models
    assert mixed.MixedOpenVinoBackend(graph).run(_inputs(2)).logits.shape[0] == 2
