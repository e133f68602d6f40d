"""The light build: XRayDesk without torch (issue 13).

Each test runs the real command line in a fresh interpreter in which torch, torchvision
and the grad-cam package cannot be imported (an import hook refuses them: ``import``
raises and ``importlib.util.find_spec`` finds nothing, as in the frozen light build).
What must work there: classifying files and folders (the exported graph, built from the
safetensors file without torch, on ONNX Runtime), the class activation map, the input
gate, the self-test; what must not work says so plainly (full fine-tuning, Grad-CAM).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_child import run_cli
from tests.paths import REPO_ROOT

BLOCKED = ("torch", "torchvision", "pytorch_grad_cam", "triton")
# The light build in a fresh interpreter: an import hook refuses BLOCKED.
NO_TORCH = f"""
import json, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is not in the light build")
        return None
sys.meta_path.insert(0, Block())
"""
pytest.importorskip("onnxruntime", reason="the light build runs on ONNX Runtime")
pytest.importorskip("onnx", reason="the light build exports graphs with the onnx package")


def light(tmp_path: Path, *args: str, **env_extra: str) -> tuple[int, str, str, set[str]]:
    """``xraydesk ARGS`` without torch: exit status, stdout, stderr, modules loaded."""
    env = {"XRAYDESK_RUNTIME": "", "QT_QPA_PLATFORM": "offscreen", **env_extra}
    run = run_cli(tmp_path, *args, prelude=NO_TORCH, **env)  # "": the light build's default
    return run.code, run.stdout, run.stderr, run.modules


def test_classify_a_dicom_without_torch(tmp_path, samples_dir):
    dicom = samples_dir / "dicom" / "rsna-cr-jpeg-baseline.dcm"
    cams = tmp_path / "cams"
    code, out, err, modules = light(
        tmp_path, "classify", "--json", "--cam-dir", str(cams), str(dicom)
    )
    assert code == 0, err
    assert not [m for m in modules if m.split(".")[0] in BLOCKED]
    row = json.loads(out.splitlines()[-1])
    assert row["error"] is None
    assert (row["prediction"] or row["withheld_prediction"]) in row["probabilities"]
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-6
    assert {"onnxruntime", "openvino"} & modules  # an exported runtime ran it
    assert list(cams.glob("*.png")), "the class activation map was not written"


def test_light_results_equal_the_full_builds(tmp_path, samples_dir):
    """The same files give the same probabilities with and without torch (fp32 both)."""
    folder = samples_dir / "dicom"
    light_csv, full_csv = tmp_path / "light.csv", tmp_path / "full.csv"
    code, _, err, _ = light(
        tmp_path, "classify", "--no-skip", "--csv", str(light_csv), str(folder),
        XRAYDESK_PRECISION="fp32",  # OpenVINO, installed here, would run bf16 rechecked
    )  # fmt: skip
    assert code == 0, err
    env = dict(os.environ, XRAYDESK_PRECISION="fp32", XRAYDESK_RUNTIME="torch")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "xraydesk",
            "classify",
            "--no-skip",
            "--csv",
            str(full_csv),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    def rows(path: Path) -> dict[str, dict[str, str]]:
        with path.open(newline="") as fh:
            return {Path(r["path"]).name: r for r in csv.DictReader(fh)}

    a, b = rows(light_csv), rows(full_csv)
    assert set(a) == set(b) and len(a) >= 5
    for name in a:
        assert a[name]["prediction"] == b[name]["prediction"], name
        assert a[name]["warnings"] == b[name]["warnings"], name
        for key in (k for k in a[name] if k.startswith("p_")):
            assert abs(float(a[name][key]) - float(b[name][key])) < 1e-4, (name, key)


def test_self_test_passes_without_torch(tmp_path):
    """The frozen light build runs this self-test; here the same code without torch: the
    models, the decoders, the class activation map and the main window."""
    code, out, err, modules = light(tmp_path, "self-test", "--json")
    assert code == 0, err[-3000:]
    report = json.loads(out[out.index("{") :])
    assert report["ok"] and report["build"] == "light" and report["torch"] is None
    assert report["grad_cam"] is False
    assert not [m for m in modules if m.split(".")[0] in BLOCKED]
    for model in report["models"]:
        assert "cam" in model and "gradcam" not in model
    assert report["window"]["screenshot"], report["window"]


def test_full_fine_tuning_says_it_needs_the_full_build(tmp_path, samples_dir):
    data = tmp_path / "data"
    for cls in ("normal", "pneumonia"):
        (data / cls).mkdir(parents=True)
    code, out, err, _ = light(tmp_path, "train", str(data), "--mode", "full", "--name", "mine")
    assert code != 0
    assert "full build" in (out + err)


def test_quick_fine_tuning_without_torch(tmp_path, shared_data):
    """Quick mode in the light build: the base model's exported graph makes the features,
    the head is fitted, and the new model is the base's weights with that head. The model
    it saves classifies the same in the light and the full build, and its test metrics are
    what its weights give."""
    from tests.training_data import kermany_rows, write_manifest
    from xraydesk import paths
    from xraydesk.classifier import Classifier
    from xraydesk.model.card import ModelCard

    rows = kermany_rows(shared_data, 12, labels=("normal", "bacterial"))
    manifest = write_manifest(tmp_path / "subset.csv", rows)
    code, out, err, modules = light(
        tmp_path, "train", str(manifest), "--name", "light-quick", "--base", "pediatric-pneumonia"
    )
    assert code == 0, err[-3000:]
    assert not [m for m in modules if m.split(".")[0] in BLOCKED]
    assert "Saved light-quick 1.0" in out
    card = ModelCard.read(paths.user_models_dir() / "light-quick.json")
    assert card.class_ids == ["normal", "bacterial"]
    details = card.training["details"]
    assert details["features_from"] != "torch" and details["features_computed"] == 24
    assert card.training.get("ood"), "the OOD statistics come from the same features"

    split = csv.DictReader((card.path.with_suffix("") / "split.csv").open())
    test_paths = [r["path"] for r in split if r["split"] == "test"]
    code, out, err, _ = light(tmp_path, "classify", "--json", "--model", "light-quick", *test_paths)
    assert code == 0, err[-3000:]
    light_rows = {r["path"]: r for r in map(json.loads, out.splitlines())}
    full = Classifier.load(card, device="cpu", runtime="torch")  # this process has torch
    from xraydesk.imaging.loader import load_xray

    by_name = {Path(p).name: r["probabilities"] for p, r in light_rows.items()}
    for path in test_paths:
        want = full.predict(load_xray(path)).probabilities
        got = by_name[Path(path).name]
        assert all(abs(got[c] - want[c]) < 0.02 for c in want), path


WIZARD = (
    NO_TORCH
    + f"""
from PySide6.QtWidgets import QApplication
app = QApplication([])
from xraydesk.gui.wizard.wizard import TrainingWizard
wizard = TrainingWizard()
wizard.show()
app.processEvents()
page = wizard.setup_page
print(json.dumps({{
    "full_enabled": page.full.isEnabled(),
    "full_tip": page.full.toolTip(),
    "bases": [page.base.itemData(i) for i in range(page.base.count())],
    "torch": any(m.split(".")[0] in {BLOCKED!r} for m in sys.modules),
}}))
wizard.close()
"""
)


def test_the_wizard_offers_quick_mode_only_without_torch(tmp_path):
    """The fine-tuning wizard in the light build: "Full" greyed out with the reason,
    no "from scratch" (a random backbone is made with torch), the installed models offered."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        QT_QPA_PLATFORM="offscreen",
    )
    done = subprocess.run(
        [sys.executable, "-c", WIZARD], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["full_enabled"] is False and "full build" in state["full_tip"]
    assert "scratch" not in state["bases"] and len(state["bases"]) >= 2
    assert state["torch"] is False
