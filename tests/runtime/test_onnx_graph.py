"""The graphs built from a weights file without torch by the one walk (runtime.resnet_walk):
ONNX with numpy and onnx (runtime.onnx_graph: the light build's ONNX Runtime) and
OpenVINO's own model with numpy and OpenVINO (runtime.openvino_graph: what OpenVINO
runs). Each must compute what the torch ResNet-50 computes (all three outputs, with every
batch norm folded) and must never need torch to be built; the OpenVINO model never
needs onnx."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.paths import REPO_ROOT
from xraydesk.errors import ModelError
from xraydesk.imaging.loader import load_xray
from xraydesk.model.card import ClassInfo, ModelCard
from xraydesk.model.network import build_network
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.saving import load_network, save_model
from xraydesk.model.three_outputs import ThreeOutputs
from xraydesk.model.weights import load_state, verified_weights
from xraydesk.runtime.names import OUTPUT_NAMES
from xraydesk.runtime.onnx_graph import resnet50_graph

# "openvino-ir": OpenVINO running the model runtime.openvino_graph built (saved as IR)
RUNTIMES = ("onnxruntime", "openvino", "openvino-ir")
SIZE = 64


def write_ir(state: dict[str, np.ndarray], channels: int, size: int, xml: Path) -> None:
    """The OpenVINO model of ``state`` saved as ``xml`` (nothing where OpenVINO is not
    installed: ``run_graph`` skips it then)."""
    if importlib.util.find_spec("openvino") is None:
        return
    from xraydesk.runtime.openvino_graph import resnet50_model, save_ir

    save_ir(resnet50_model(state, channels, size), xml)


def write_both(state: dict[str, np.ndarray], channels: int, size: int, graph: Path) -> None:
    """The ONNX graph at ``graph`` and the OpenVINO model beside it (``.xml``)."""
    graph.write_bytes(resnet50_graph(state, channels, size))
    write_ir(state, channels, size, graph.with_suffix(".xml"))


def randomised_network(channels: int, classes: int, seed: int) -> torch.nn.Module:
    """A ResNet-50 whose batch norms are far from the identity, so folding really matters."""
    torch.manual_seed(seed)
    network = build_network("resnet50", classes, channels)
    with torch.no_grad():
        for m in network.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.3, 3.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return network.eval()


def numpy_state(network: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in network.state_dict().items()}


def run_graph(graph: Path, x: np.ndarray, runtime: str) -> list[np.ndarray]:
    """The graph's three outputs in ``runtime`` at fp32 (skips a runtime not installed);
    "openvino-ir" runs the OpenVINO model saved beside the ONNX graph."""
    if runtime == "openvino-ir":
        graph = graph.with_suffix(".xml")
    if runtime == "onnxruntime":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        return session.run(list(OUTPUT_NAMES), {"input": x})
    ov = pytest.importorskip("openvino")
    # fp32 said explicitly: OpenVINO's default on an AMX CPU is bf16.
    compiled = ov.Core().compile_model(str(graph), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled.create_infer_request().infer({0: x})
    ports = {port.get_any_name(): port for port in compiled.outputs}
    return [np.array(result[ports[name]]) for name in OUTPUT_NAMES]


def torch_outputs(network: torch.nn.Module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in ThreeOutputs(network.eval())(torch.from_numpy(x))]


def assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """Each output within 1e-4 of its own largest magnitude (fp32 rounding, nothing more)."""
    for name, g, w in zip(OUTPUT_NAMES, got, want, strict=True):
        assert g.shape == w.shape, (name, g.shape, w.shape)
        scale = float(np.abs(w).max())
        assert scale > 0, name
        error = float(np.abs(g - w).max())
        assert error <= 1e-4 * scale, (name, error, scale)


@pytest.fixture(scope="module", params=[(1, 3), (3, 2)], ids=["1ch-3class", "3ch-2class"])
def random_case(request, tmp_path_factory) -> tuple[Path, np.ndarray, list[np.ndarray]]:
    """A randomised network's graph (built once for both runtimes), an input batch of 2 and
    the torch outputs for it."""
    channels, classes = request.param
    network = randomised_network(channels, classes, seed=channels)
    graph = tmp_path_factory.mktemp("graph") / "resnet50.onnx"
    write_both(numpy_state(network), channels, SIZE, graph)
    x = np.random.default_rng(channels).standard_normal((2, channels, SIZE, SIZE), np.float32)
    return graph, x, torch_outputs(network, x)


def test_the_graph_passes_the_onnx_checker(random_case):
    """The app skips onnx's checker (it would parse a third copy of the weights at export):
    the graphs are checked here, and differ between models only in their numbers."""
    import onnx

    onnx.checker.check_model(str(random_case[0]), full_check=True)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_graph_equals_torch_with_batch_norm_folded(random_case, runtime):
    graph, x, reference = random_case
    outputs = run_graph(graph, x, runtime)
    assert [o.shape for o in outputs][1:] == [(2, 2048), (2, 2048, 2, 2)]
    assert_same(outputs, reference)


@pytest.mark.data
def test_bundled_model_graph_equals_torch_on_test_split_radiographs(shared_data, tmp_path):
    """chest-3class (float16 weights on disk, read as stored, as the export reads them) on
    two seeded test-split images."""
    card = ModelCard.read(REPO_ROOT / "models" / "chest-3class.json")
    prep = card.preprocessing
    assert all(
        v.dtype == np.float32
        for v in load_state(verified_weights(card)).values()
        if v.dtype.kind == "f"
    )
    state = load_state(verified_weights(card), float32=False)
    assert {v.dtype for v in state.values() if v.dtype.kind == "f"} == {np.dtype(np.float16)}
    graph = tmp_path / "chest-3class.onnx"
    write_both(state, prep.channels, prep.size, graph)
    split = REPO_ROOT / "models" / card.name / "split.csv"
    paths = [r["path"] for r in csv.DictReader(split.open()) if r["split"] == "test"]
    chosen = sorted(np.random.default_rng(13).choice(len(paths), 2, replace=False))
    x = np.stack([prep(load_xray(shared_data / paths[i])) for i in chosen])
    reference = torch_outputs(load_network(card), x)
    for runtime in RUNTIMES:
        try:
            outputs = run_graph(graph, x, runtime)
        except pytest.skip.Exception:
            continue  # that runtime is not installed; the other still counts
        assert_same(outputs, reference)


def _ir_builder():
    pytest.importorskip("openvino")
    from xraydesk.runtime.openvino_graph import resnet50_model

    return resnet50_model


@pytest.mark.parametrize("form", ["onnx", "ir"])
def test_weights_that_are_not_a_resnet50_are_named(form):
    """Both builders walk the weights the same way (runtime.resnet_walk): the same errors."""
    build = resnet50_graph if form == "onnx" else _ir_builder()
    state = numpy_state(build_network("resnet50", 3, 1))
    with pytest.raises(ValueError, match=r"conv1\.weight.*1 input channel\(s\), not 3"):
        build(state, 3, SIZE)
    missing = {k: v for k, v in state.items() if k != "layer3.2.bn2.running_var"}
    with pytest.raises(ValueError, match=r"'layer3\.2\.bn2\.running_var'"):
        build(missing, 1, SIZE)
    unexpected = {**state, "layer5.0.conv1.weight": np.zeros((1, 1, 1, 1), np.float32)}
    with pytest.raises(ValueError, match=r"layer5\.0\.conv1\.weight"):
        build(unexpected, 1, SIZE)
    narrow = {**state, "layer2.1.conv2.weight": np.zeros((128, 64, 3, 3), np.float32)}
    with pytest.raises(ValueError, match=r"layer2\.1\.conv2\.weight has shape \(128, 64, 3, 3\)"):
        build(narrow, 1, SIZE)
    bias = {**state, "fc.bias": np.zeros(4, np.float32)}
    with pytest.raises(ValueError, match=r"fc\.bias has shape \(4,\)"):
        build(bias, 1, SIZE)
    negative = {**state, "bn1.running_var": -np.ones(64, np.float32)}
    with pytest.raises(ValueError, match=r"bn1\.running_var has negative values"):
        build(negative, 1, SIZE)
    # num_batches_tracked is a training counter: present or not, it changes nothing.
    counters = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if form == "onnx":
        assert resnet50_graph(counters, 1, SIZE) == resnet50_graph(state, 1, SIZE)
    else:
        assert len(build(counters, 1, SIZE).get_ops()) == len(build(state, 1, SIZE).get_ops())


@pytest.mark.parametrize("precision", ["f32", "bf16"])
def test_openvino_runs_its_own_model_as_it_ran_the_onnx_graph(random_case, precision):
    """The IR OpenVINO now runs and the ONNX graph it ran before give the same numbers,
    bit for bit, at fp32 and at bf16: the same weights, operations and node names
    (``Convolution`` named as OpenVINO's ONNX reader names it), so the faithfulness
    verdicts measured on either hold for both."""
    ov = pytest.importorskip("openvino")
    from xraydesk.runtime import openvino_backend

    if precision == "bf16" and not openvino_backend.cpu_has_bf16():
        pytest.skip("this CPU has no native bf16")
    graph, x, _ = random_case
    core = ov.Core()
    outputs = []
    for path in (graph, graph.with_suffix(".xml")):
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": precision})
        ports = {port.get_any_name(): port for port in compiled.outputs}
        result = compiled.create_infer_request().infer({0: x})
        outputs.append([np.array(result[ports[name]]) for name in OUTPUT_NAMES])
    for name, onnx_out, ir_out in zip(OUTPUT_NAMES, *outputs, strict=True):
        np.testing.assert_array_equal(ir_out, onnx_out, err_msg=name)


def test_verified_weights_checks_presence_and_sha256(tmp_path):
    card = ModelCard(
        name="m",
        version="1",
        classes=[ClassInfo("a", "A"), ClassInfo("b", "B")],
        preprocessing=Preprocessing(size=SIZE),
        weights_file="m.safetensors",
        weights_sha256="0" * 64,
        path=tmp_path / "m.json",
    )
    with pytest.raises(ModelError, match="weights file of model 'm' is missing"):
        verified_weights(card)
    (tmp_path / "m.safetensors").write_bytes(b"not these weights")
    with pytest.raises(ModelError, match="do not match the sha256 in the model card"):
        verified_weights(card)


def python(code: str) -> str:
    """Run ``code`` in a fresh interpreter from the repository root; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_export_modules_does_not_import_torch():
    code = (
        "import sys\n"
        "import xraydesk.runtime.onnx_graph, xraydesk.runtime.openvino_graph\n"
        "import xraydesk.model.weights\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    assert python(code) == "[]"


def half_model(tmp_path: Path, seed: int) -> Path:
    """A randomised network saved as a model with float16 weights; its card's path."""
    card = ModelCard(
        name="half",
        version="1",
        classes=[ClassInfo(c, c) for c in ("a", "b", "c")],
        preprocessing=Preprocessing(size=SIZE),
        weights_file="",
        weights_sha256="",
    )
    return save_model(randomised_network(1, 3, seed), card, tmp_path / "model", half=True)


def export_in_child(card_path: Path, blocked: tuple[str, ...], export: str) -> str:
    """Run the statements ``export`` (``card``: the model's card) in a fresh interpreter
    where none of ``blocked`` can be imported; what it then holds for them."""
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # any import of it now fails\n"
        "from pathlib import Path\n"
        "from xraydesk.model.card import ModelCard\n"
        f"card = ModelCard.read(Path({str(card_path)!r}))\n"
        f"{export}\n"
        f"print([sys.modules[name] for name in {blocked!r}])\n"
    )
    return python(code)


def test_a_safetensors_file_becomes_a_graph_without_torch(tmp_path):
    """float16 weights saved as a model, exported in an interpreter where torch cannot be
    imported, give the outputs of the torch network loaded from that same file."""
    card_path = half_model(tmp_path, seed=7)
    graph = tmp_path / "graph.onnx"
    export = (
        "from xraydesk.model.weights import load_state, verified_weights\n"
        "from xraydesk.runtime.onnx_graph import resnet50_graph\n"
        "state = load_state(verified_weights(card))\n"
        "prep = card.preprocessing\n"
        f"Path({str(graph)!r}).write_bytes(resnet50_graph(state, prep.channels, prep.size))"
    )
    assert export_in_child(card_path, ("torch",), export) == "[None]"
    x = np.random.default_rng(7).standard_normal((2, 1, SIZE, SIZE), np.float32)
    reference = torch_outputs(load_network(ModelCard.read(card_path)), x)
    assert_same(run_graph(graph, x, "onnxruntime"), reference)


def test_a_safetensors_file_becomes_an_openvino_model_without_torch_or_onnx(tmp_path):
    """float16 weights saved as a model, exported for OpenVINO (``export.write_ir``) in an
    interpreter where neither torch nor onnx can be imported, give the outputs of the
    torch network loaded from that same file."""
    pytest.importorskip("openvino")
    card_path = half_model(tmp_path, seed=8)
    graph = tmp_path / "graph.onnx"  # run_graph's "openvino-ir" runs graph.xml
    export = (
        "from xraydesk.runtime.export import write_ir\n"
        f"write_ir(card, Path({str(graph.with_suffix('.xml'))!r}))"
    )
    assert export_in_child(card_path, ("torch", "onnx"), export) == "[None, None]"
    x = np.random.default_rng(8).standard_normal((2, 1, SIZE, SIZE), np.float32)
    reference = torch_outputs(load_network(ModelCard.read(card_path)), x)
    assert_same(run_graph(graph, x, "openvino-ir"), reference)
