"""Model cards, weights storage, preprocessing, device choice, the classifier and the library."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.model_factory import make_test_model
from tests.paths import REPO_ROOT
from tests.xrays import synthetic_xray
from xraydesk import paths
from xraydesk.classifier import Classifier
from xraydesk.errors import ModelError, NoModelError
from xraydesk.files import sha256_file
from xraydesk.imaging.xray import XRay
from xraydesk.model import library
from xraydesk.model.card import ModelCard
from xraydesk.model.device import DeviceChoice, cpu_supports_bf16, select_device
from xraydesk.model.preprocessing import Preprocessing, equalize_histogram
from xraydesk.model.saving import load_network

# -- cards and weights ---------------------------------------------------------------------


def test_card_round_trip_and_fields(test_model_path: Path):
    data = json.loads(test_model_path.read_text())
    for key in (
        "name",
        "version",
        "classes",
        "preprocessing",
        "weights",
        "intended_use",
        "metrics",
    ):
        assert key in data
    assert data["weights"]["sha256"] == sha256_file(test_model_path.with_suffix(".safetensors"))
    card = ModelCard.read(test_model_path)
    assert card.class_ids == ["normal", "pneumonia", "covid19"]
    assert card.display_names["covid19"] == "COVID-19"
    assert card.preprocessing == Preprocessing(size=64)
    assert ModelCard.from_dict(card.to_dict(), path=card.path).to_dict() == card.to_dict()


def test_weights_are_safetensors_not_pickle(test_model_path: Path):
    raw = test_model_path.with_suffix(".safetensors").read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_len])
    assert "fc.weight" in header
    assert not raw.startswith(b"PK") and not raw.startswith(b"\x80")  # neither zip nor pickle


def test_tampered_weights_are_refused(test_model_path: Path, tmp_path: Path):
    for f in (test_model_path, test_model_path.with_suffix(".safetensors")):
        shutil.copy(f, tmp_path / f.name)
    weights = tmp_path / test_model_path.with_suffix(".safetensors").name
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256"):
        load_network(ModelCard.read(tmp_path / test_model_path.name))


def test_missing_weights_and_bad_cards(tmp_path: Path, test_model_path: Path):
    shutil.copy(test_model_path, tmp_path / test_model_path.name)
    with pytest.raises(ModelError, match="missing"):
        load_network(ModelCard.read(tmp_path / test_model_path.name))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match=r"bad\.json"):
        ModelCard.read(bad)
    data = json.loads(test_model_path.read_text())
    data["classes"] = data["classes"][:1]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="two distinct classes"):
        ModelCard.read(one)
    data = json.loads(test_model_path.read_text())
    data["weights"]["file"] = "../elsewhere.safetensors"
    escape = tmp_path / "escape.json"
    escape.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="beside the card"):
        ModelCard.read(escape)


def test_half_precision_weights_load_as_float32(tmp_path: Path):
    full = make_test_model(tmp_path / "full", name="m")
    card = ModelCard.read(full)
    net = load_network(card)
    from xraydesk.model.saving import save_model

    half_path = save_model(net, ModelCard.read(full), tmp_path / "half", half=True)
    half_card = ModelCard.read(half_path)
    assert half_card.weights_dtype == "float16"
    assert half_card.weights_path.stat().st_size < card.weights_path.stat().st_size * 0.6
    half_net = load_network(half_card)
    assert all(p.dtype == torch.float32 for p in half_net.parameters())


SAVE_AGAIN = """
import sys
from pathlib import Path
from xraydesk.model.card import ModelCard
from xraydesk.model.saving import load_network, save_model
card = ModelCard.read(Path(sys.argv[1]))
save_model(load_network(card), card, Path(sys.argv[2]), half=True)
"""


def test_the_same_weights_save_to_the_same_file(tmp_path: Path):
    """Byte for byte, across processes: a recipe run twice gives one sha256, not two."""
    full = make_test_model(tmp_path / "full", name="m")
    for out in ("a", "b"):
        cmd = [sys.executable, "-c", SAVE_AGAIN, str(full), str(tmp_path / out)]
        subprocess.run(cmd, check=True, timeout=120)
    first, second = (tmp_path / out / "m.safetensors" for out in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()


# -- preprocessing ----------------------------------------------------------------------------


def test_preprocessing_shapes_and_normalisation():
    xray = synthetic_xray()
    for prep in (Preprocessing(size=64), Preprocessing(size=64, resize="letterbox", channels=3)):
        tensor = prep(xray)
        assert tensor.shape == (prep.channels, 64, 64)
        assert tensor.dtype == np.float32
        unit = prep.resize_unit(xray.render())
        np.testing.assert_allclose(prep.finish(unit)[0], (unit[0] - prep.mean) / prep.std)
        # training hands finish a torch tensor (its augmented image) and gets one back
        back = prep.finish(torch.from_numpy(unit))
        assert isinstance(back, torch.Tensor)
        np.testing.assert_array_equal(back.numpy(), prep.finish(unit))


def test_preprocessing_resizes_as_torch_antialiased_bilinear():
    """One resize for inference (numpy) and for the models' training inputs: torch's
    anti-aliased bilinear, which the bundled models learned from."""
    import torch.nn.functional as F

    unit = synthetic_xray(shape=(701, 523)).render()
    for size in (64, 224):
        ours = Preprocessing(size=size).resize_unit(unit)
        theirs = F.interpolate(
            torch.from_numpy(unit)[None, None], size=(size, size), mode="bilinear",
            antialias=True, align_corners=False,
        )[0].clamp(0, 1).numpy()  # fmt: skip
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_preprocessing_uses_display_orientation():
    """A MONOCHROME1 image must reach the model the same way up as its MONOCHROME2 twin."""
    xray = synthetic_xray()
    twin = XRay(
        pixels=xray.window.high + xray.window.low - xray.pixels,
        bits_stored=xray.bits_stored,
        window=xray.window,
        metadata=xray.metadata,
        inverted=True,
    )
    prep = Preprocessing(size=64)
    np.testing.assert_allclose(prep(xray), prep(twin), atol=1e-4, rtol=0)


def test_letterbox_keeps_aspect_and_reports_content_box():
    prep = Preprocessing(size=100, resize="letterbox")
    unit = np.ones((50, 100), dtype=np.float32)
    out = prep.resize_unit(unit)[0]
    top, left, bottom, right = prep.content_box(50, 100)
    assert (top, left, bottom, right) == (25, 0, 75, 100)
    assert out[:20].max() == 0 and out[80:].max() == 0
    assert out[30:70].min() > 0.99


def test_equalisation_flattens_histogram():
    # Own generator: the global one's state depends on which tests ran first.
    img = np.random.default_rng(0).random((1, 128, 128), dtype=np.float32) ** 2  # dark
    eq = equalize_histogram(img)
    assert eq.min() == 0 and eq.max() == 1
    quartiles = np.quantile(eq.ravel(), [0.25, 0.5, 0.75])
    # the darkest bin (6% of these pixels) maps to 0, so quartiles sit a little low
    np.testing.assert_allclose(quartiles, [0.25, 0.5, 0.75], atol=0.05, rtol=0)
    flat = np.full((1, 8, 8), 0.3, dtype=np.float32)
    np.testing.assert_array_equal(equalize_histogram(flat), flat)
    as_tensor = equalize_histogram(torch.from_numpy(img))  # training's tensors
    np.testing.assert_array_equal(as_tensor.numpy(), eq)


def test_preprocessing_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown preprocessing"):
        Preprocessing.from_dict({"size": 64, "sharpen": True})
    with pytest.raises(ValueError):
        Preprocessing.from_dict({"size": 64, "resize": "crop"})


# -- device and classifier ------------------------------------------------------------------


def test_device_selection_on_this_machine(monkeypatch):
    choice = select_device("cpu")
    assert choice.type == "cpu"
    assert choice.label == ("CPU, bf16" if cpu_supports_bf16() else "CPU, fp32")
    monkeypatch.setenv("XRAYDESK_PRECISION", "fp32")
    assert select_device("cpu").label == "CPU, fp32"
    with pytest.raises(ModelError, match="unknown device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        assert select_device("auto").type in ("cpu", "mps")
        with pytest.raises(ModelError, match="no CUDA device"):
            select_device("cuda")


def test_device_menu_offers_what_this_machine_has():
    from xraydesk.model.device import device_available

    assert device_available("auto") and device_available("cpu")
    assert device_available("cuda") == torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    assert device_available("mps") == bool(mps is not None and mps.is_available())


def test_probabilities_sum_to_one_and_prediction_is_argmax(test_classifier: Classifier):
    pred = test_classifier.predict(synthetic_xray())
    assert set(pred.probabilities) == {"normal", "pneumonia", "covid19"}
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-9)
    assert pred.predicted == max(pred.probabilities, key=pred.probabilities.get)
    assert pred.model == "test-3class 0.0-test"
    assert pred.device.startswith("CPU")
    assert pred.seconds > 0


def test_mixed_precision_stays_within_001_of_fp32(test_model_path: Path):
    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16: mixed precision is not used here")
    fast = Classifier.load(test_model_path, device="cpu")
    assert fast.device.autocast_dtype == torch.bfloat16
    exact = Classifier.load(test_model_path, device=DeviceChoice("cpu", "fp32", "CPU, fp32"))
    for seed in range(4):
        xray = synthetic_xray(seed=seed)
        a = fast.predict(xray).probabilities
        b = exact.predict(xray).probabilities
        assert max(abs(a[k] - b[k]) for k in a) < 0.01


def test_temperature_is_applied(test_model_path: Path, tmp_path: Path):
    for f in (test_model_path, test_model_path.with_suffix(".safetensors")):
        shutil.copy(f, tmp_path / f.name)
    card = ModelCard.read(tmp_path / test_model_path.name)
    card.temperature = 50.0
    hot = Classifier.load(card, device="cpu")
    base = Classifier.load(test_model_path, device="cpu")
    xray = synthetic_xray()
    spread = lambda p: max(p.values()) - min(p.values())  # noqa: E731
    assert spread(hot.predict(xray).probabilities) < spread(base.predict(xray).probabilities)


# -- library ----------------------------------------------------------------------------------


def test_no_model_installed_is_stated_plainly(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: tmp_path / "none")
    with pytest.raises(NoModelError, match="No model is installed"):
        library.resolve_model(None)


def test_library_lists_resolves_renames_and_deletes(monkeypatch, tmp_path: Path):
    bundled = tmp_path / "bundled"
    make_test_model(bundled, name="chest-3class")
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: bundled)
    make_test_model(paths.user_models_dir(), name="mine")
    names = [(c.name, c.source) for c in library.list_models()]
    assert names == [("chest-3class", "bundled"), ("mine", "user")]
    assert library.resolve_model(None).name == "chest-3class"
    assert library.resolve_model("mine").source == "user"
    assert library.resolve_model(str(bundled / "chest-3class.json")).name == "chest-3class"
    with pytest.raises(NoModelError, match="available: chest-3class, mine"):
        library.resolve_model("nope")
    renamed = library.rename_user_model("mine", "mine2")
    Classifier.load(renamed, device="cpu")  # weights still found and verified
    with pytest.raises(ModelError, match="already exists"):
        library.rename_user_model("mine2", "chest-3class")
    with pytest.raises(ModelError, match="bundled"):
        library.delete_user_model("chest-3class")
    with pytest.raises(ModelError, match="invalid model name"):
        library.validate_name("../evil")
    library.delete_user_model("mine2")
    assert [c.name for c in library.list_models()] == ["chest-3class"]
    assert list(paths.user_models_dir().iterdir()) == []


def test_bundled_models_dir_found_from_checkout():
    root = REPO_ROOT
    assert paths.bundled_models_dir() in (root / "models", root / "xraydesk" / "bundled_models")


def test_data_dir_override(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(tmp_path / "portable"))
    assert paths.data_dir() == tmp_path / "portable"
    assert paths.user_models_dir() == tmp_path / "portable" / "models"
