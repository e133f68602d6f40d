"""Start-up (issue 13): what each command imports, and the ResNet-50 that replaced torchvision's.

Wall times are measured by tests/benchmarks/bench_startup.py against baselines of the same
run; here the causes are checked instead: a fresh interpreter runs the command and reports
which modules it loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.cli_child import run_cli
from tests.paths import REPO_ROOT
from xraydesk.model.card import ModelCard
from xraydesk.model.network import build_network
from xraydesk.model.resnet import resnet50
from xraydesk.model.saving import load_network

BUNDLED = REPO_ROOT / "models" / "chest-3class.json"

# Run ``xraydesk ARGS`` in this interpreter, then write the exit status and sys.modules.
HEAVY = ("torch", "torchvision", "scipy", "PySide6", "sympy")
NEVER_AT_RUN_TIME = ("torchvision", "sympy", "torch._dynamo")


def loaded_by(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    """Exit status, modules loaded and stdout of ``xraydesk ARGS`` in a fresh interpreter."""
    run = run_cli(tmp_path, *args, timeout=300)
    return run.code, run.modules, run.stdout


def present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


@pytest.mark.parametrize("args", [["--version"], ["models"], ["models", "--json"]])
def test_version_and_models_import_no_heavy_library(tmp_path, args):
    """torch, torchvision, scipy, sympy and Qt took 7 s before ``--version`` could answer."""
    code, modules, out = loaded_by(tmp_path, *args)
    assert code == 0
    assert present(modules, HEAVY) == []
    if args == ["--version"]:
        assert out.startswith("XRayDesk ")
        assert not any(m.startswith("xraydesk.model") for m in modules)
    else:
        assert "chest-3class" in out  # the bundled models are listed all the same


def test_models_json_still_carries_the_test_metrics(tmp_path):
    """Without scipy the headline (accuracy, its interval, n) is the same as the card's."""
    code, _modules, out = loaded_by(tmp_path, "models", "--json")
    rows = {row["name"]: row for row in map(json.loads, out.splitlines())}
    test = ModelCard.read(BUNDLED).metrics["test"]
    assert code == 0
    assert rows["chest-3class"]["test"]["accuracy"] == test["accuracy"]
    assert rows["chest-3class"]["test"]["n"] == test["n"]
    assert rows["chest-3class"]["test"]["accuracy_ci95"] is not None


@pytest.mark.slow
def test_classify_never_imports_torchvision_sympy_or_dynamo(tmp_path, shared_data):
    dicom = shared_data / "samples" / "dicom" / "siim-cr-jpeg-baseline.dcm"
    code, modules, out = loaded_by(tmp_path, "classify", "--model", str(BUNDLED), str(dicom))
    assert code == 0
    assert dicom.name in out
    assert {"openvino", "onnxruntime", "torch"} & modules  # it did run the model
    assert present(modules, NEVER_AT_RUN_TIME) == []
    assert "PySide6" not in modules


def test_registering_a_subcommand_does_not_import_its_engine(tmp_path):
    """``xraydesk classify --help`` shows its options without importing torch."""
    code, modules, out = loaded_by(tmp_path, "classify", "--help")
    assert code == 0 and "--model" in out
    assert present(modules, HEAVY) == []


# ---------------------------------------------------------------- the ResNet-50


def torchvision_resnet50(num_classes: int, in_channels: int = 3) -> torch.nn.Module:
    from torchvision.models import resnet50 as reference

    net = reference(weights=None, num_classes=num_classes)
    if in_channels != 3:
        net.conv1 = torch.nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


def test_resnet50_has_torchvisions_modules_keys_and_shapes():
    ours, theirs = resnet50(num_classes=3), torchvision_resnet50(3)
    assert [(n, type(m).__name__) for n, m in ours.named_modules()] == [
        (n, type(m).__name__) for n, m in theirs.named_modules()
    ]
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)  # same keys, same order
    for key, value in theirs_state.items():
        assert ours_state[key].shape == value.shape and ours_state[key].dtype == value.dtype, key


def test_resnet50_initialises_as_torchvision_does():
    """Same seed, same random weights: the training recipe starts where it always did."""
    torch.manual_seed(7)
    ours = resnet50(num_classes=4).state_dict()
    torch.manual_seed(7)
    theirs = torchvision_resnet50(4).state_dict()
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


@pytest.mark.parametrize("train", [False, True])
def test_resnet50_outputs_equal_torchvisions_on_one_state_dict(train):
    torch.manual_seed(0)
    theirs = torchvision_resnet50(3, in_channels=1)
    ours = build_network("resnet50", 3, in_channels=1)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.train(train)
    theirs.train(train)
    x = torch.randn(4, 1, 96, 96)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    if train:  # batch statistics were updated the same way too
        assert all(torch.equal(ours.state_dict()[k], v) for k, v in theirs.state_dict().items())


def test_bundled_weights_load_unchanged_and_give_torchvisions_outputs(shared_data):
    """The .safetensors files made with torchvision's class load into ours (strict) and
    give the same logits on a real radiograph."""
    from safetensors.torch import load_file

    from xraydesk.imaging import load_xray

    card = ModelCard.read(BUNDLED)
    ours = load_network(card)
    theirs = torchvision_resnet50(len(card.classes), card.preprocessing.channels)
    state = load_file(str(card.weights_path))
    theirs.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    theirs.eval()
    xray = load_xray(shared_data / "samples" / "dicom" / "siim-cr-jpeg-baseline.dcm")
    x = torch.from_numpy(card.preprocessing(xray)[None])
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    assert not ours.training
    assert all(p.device.type == "cpu" and p.requires_grad for p in ours.parameters())
