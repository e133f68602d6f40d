"""The runtime registry (xraydesk.runtime.registry): the runtimes as data, an unknown name
refused with the known ones, a missing package said so; and Spark's executors get the
precision as data, never through os.environ."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from xraydesk.model.card import ModelCard
from xraydesk.optional import extra_hint
from xraydesk.runtime.backend import RuntimeUnavailable
from xraydesk.runtime.names import RUNTIMES
from xraydesk.runtime.registry import (
    REGISTRY,
    available_runtimes,
    known_runtimes,
    runtime_spec,
)
from xraydesk.runtime.select import Candidate, build_backend, cpu_candidates


def test_the_registry_names_every_runtime_once():
    assert tuple(REGISTRY) == RUNTIMES
    assert known_runtimes() == ("auto", *RUNTIMES)
    assert not REGISTRY["torch"].exported


@pytest.mark.parametrize("name", [n for n, s in REGISTRY.items() if s.exported])
def test_an_exported_runtimes_spec_matches_its_backend(name):
    spec = REGISTRY[name]
    cls = spec.backend_class()
    assert cls.runtime == name
    assert spec.precisions == importlib.import_module(cls.__module__).PRECISIONS


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(RuntimeUnavailable) as caught:
        runtime_spec("tensorrt", "XRAYDESK_RUNTIME")
    message = str(caught.value)
    assert "'tensorrt' (from XRAYDESK_RUNTIME)" in message
    assert "auto, torch, onnxruntime, openvino" in message


def test_building_an_unknown_runtime_is_an_error_not_openvino(test_model_path):
    """It used to fall through to OpenVINO for any name it did not know."""
    card = ModelCard.read(test_model_path)
    with pytest.raises(RuntimeUnavailable, match="unknown runtime 'tensorrt'"):
        build_backend(Candidate("tensorrt", "fp32"), card)


@pytest.mark.parametrize("name", ["onnxruntime", "openvino", "torch"])
def test_a_spec_whose_package_is_missing_says_so(name, monkeypatch):
    spec = REGISTRY[name]
    monkeypatch.setitem(sys.modules, spec.package, None)  # blocked: counts as not installed
    assert not spec.is_available()
    assert name not in available_runtimes()
    reason = spec.unavailable_reason()
    assert reason is not None and reason.startswith(f"runtime {name}")
    if name == "torch":
        assert "light build" in reason
    else:
        assert reason == f"runtime {name} is not installed: {extra_hint(name)}"
        assert all(c.runtime != name for c in cpu_candidates())


def test_an_installed_runtime_is_available():
    torch_spec = REGISTRY["torch"]
    assert torch_spec.is_available() and torch_spec.unavailable_reason() is None
    assert "torch" in available_runtimes()


def test_spark_workers_get_the_precision_as_data(test_model_path, monkeypatch):
    """``--precision fp32`` reaches the worker's model through ``ModelRef``; the worker's
    environment is left as it was (it used to set XRAYDESK_PRECISION in it)."""
    from xraydesk.spark import executor

    monkeypatch.delenv("XRAYDESK_PRECISION", raising=False)
    monkeypatch.setattr(executor, "_MODELS", {})  # this test's model only
    ref = executor.ModelRef.of(ModelCard.read(test_model_path), device="cpu", precision="fp32")
    before = dict(os.environ)
    model = executor.loaded_model(ref)
    assert dict(os.environ) == before
    assert model.classifier.device.precision == "fp32"
    assert model.classifier.backend.precision == "fp32"


def test_the_install_hint_names_this_checkout_not_a_package_index(tmp_path, monkeypatch):
    """XRayDesk is not on a package index: ``pip install 'xraydesk[openvino]'`` finds
    nothing. From a source checkout the hint installs the extra from that folder."""
    import xraydesk
    from xraydesk import optional

    checkout = Path(xraydesk.__file__).resolve().parent.parent
    assert extra_hint("openvino") == f"pip install -e '{checkout}[openvino]'"
    wheel = tmp_path / "site-packages" / "xraydesk"  # installed from a wheel: no pyproject
    wheel.mkdir(parents=True)
    monkeypatch.setattr(optional, "__file__", str(wheel / "optional.py"))
    assert optional.extra_hint("spark").startswith("pip install 'xraydesk[spark]' (from the")
