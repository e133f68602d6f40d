"""xraydesk.environment: every XRAYDESK_* variable parsed once, bad values named clearly;
and the readers (data folder, runtime cache, device, runtime choice) see it at call time."""

from __future__ import annotations

from pathlib import Path

import pytest

from xraydesk import environment, paths
from xraydesk.environment import (
    DATA_DIR,
    DEBUG,
    PRECISION,
    RUNTIME,
    RUNTIME_CACHE,
    Environment,
    SettingError,
    from_environ,
)
from xraydesk.errors import XRayDeskError
from xraydesk.model.device import select_device
from xraydesk.runtime.backend import RuntimeUnavailable
from xraydesk.runtime.export import runtime_cache_dir
from xraydesk.runtime.select import cpu_candidates, runtime_preference


def test_nothing_set_gives_the_defaults():
    assert from_environ({}) == Environment()
    settings = from_environ({DATA_DIR: "", RUNTIME: "", PRECISION: "", DEBUG: ""})
    assert settings == Environment(None, None, None, "auto", False)
    assert settings.reduced_precision_allowed


@pytest.mark.parametrize(
    ("value", "expected"),
    [("fp32", "fp32"), ("FP32", "fp32"), (" fp32 ", "fp32"), ("auto", "auto"), ("", "auto")],
)
def test_precision_good_values(value, expected):
    settings = from_environ({PRECISION: value})
    assert settings.precision == expected
    assert settings.reduced_precision_allowed == (expected == "auto")


@pytest.mark.parametrize("value", ["bf16", "fp16", "32", "fp32x"])
def test_precision_bad_values_name_the_variable(value):
    with pytest.raises(SettingError) as caught:
        from_environ({PRECISION: value})
    message = str(caught.value)
    assert message.startswith(f"{PRECISION}={value!r}") and "auto, fp32" in message
    assert isinstance(caught.value, XRayDeskError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("off", False)],
)
def test_debug_good_values(value, expected):
    assert from_environ({DEBUG: value}).debug is expected


@pytest.mark.parametrize("value", ["2", "maybe", "enabled"])
def test_debug_bad_values_name_the_variable(value):
    with pytest.raises(SettingError, match=rf"^{DEBUG}={value!r}: not a yes/no value"):
        from_environ({DEBUG: value})


@pytest.mark.parametrize("variable", [DATA_DIR, RUNTIME_CACHE])
def test_folders(variable, tmp_path):
    field = "data_dir" if variable == DATA_DIR else "runtime_cache"
    assert getattr(from_environ({variable: str(tmp_path)}), field) == tmp_path
    with pytest.raises(SettingError, match=rf"^{variable}='  ': blank"):
        from_environ({variable: "  "})


def test_runtime_is_normalised_and_checked_against_the_registry(monkeypatch):
    assert from_environ({RUNTIME: " OpenVINO "}).runtime == "openvino"
    monkeypatch.setenv(RUNTIME, "ONNXRuntime")
    assert runtime_preference() == "onnxruntime"
    monkeypatch.setenv(RUNTIME, "tensorrt")
    with pytest.raises(RuntimeUnavailable, match=rf"'tensorrt' \(from {RUNTIME}\).*openvino"):
        runtime_preference()


def test_readers_see_the_environment_at_call_time(monkeypatch, tmp_path):
    """Set after import, the variables still count (tests and Spark workers rely on it)."""
    monkeypatch.setenv(DATA_DIR, str(tmp_path / "data"))
    monkeypatch.setenv(RUNTIME_CACHE, str(tmp_path / "graphs"))
    assert paths.data_dir() == tmp_path / "data"
    assert runtime_cache_dir() == tmp_path / "graphs"
    monkeypatch.setenv(PRECISION, "fp32")
    assert select_device("cpu").precision == "fp32"
    assert all(c.precision == "fp32" for c in cpu_candidates())
    monkeypatch.setenv(PRECISION, "bf16")
    with pytest.raises(SettingError, match=PRECISION):
        select_device("cpu")


def test_a_bad_data_folder_value_is_a_data_folder_error(monkeypatch):
    """Logging asks for the data folder before a front door can report errors; it carries
    on without the folder on an OSError, which this is too."""
    monkeypatch.setenv(DATA_DIR, " ")
    with pytest.raises(paths.DataFolderError, match=DATA_DIR):
        paths.data_dir()
    monkeypatch.setenv(DATA_DIR, "")
    monkeypatch.setenv(PRECISION, "bf16")  # another variable's bad value: not the folder's
    assert paths.data_dir().is_dir()


def test_a_callers_precision_wins_over_the_environment(monkeypatch):
    """What Spark's executors get as data: fp32 from the caller, whatever the variable."""
    monkeypatch.setenv(PRECISION, "auto")
    assert select_device("cpu", precision="fp32").precision == "fp32"
    assert all(c.precision == "fp32" for c in cpu_candidates(precision="fp32"))
    assert environment.reduced_precision_allowed("auto")
    with pytest.raises(SettingError, match=r"^precision='bf16'"):
        environment.reduced_precision_allowed("bf16")


def test_every_variable_read_in_the_package_is_documented_here():
    """No module reads an XRAYDESK_* variable itself: they all go through the settings."""
    package = Path(environment.__file__).parent
    documented = {DATA_DIR, RUNTIME_CACHE, RUNTIME, PRECISION, DEBUG}
    for name in documented:
        assert name in (environment.__doc__ or "")
    for source in package.rglob("*.py"):
        if source.name == "environment.py":
            continue
        text = source.read_text(encoding="utf-8")
        for reader in ('environ.get("XRAYDESK_', 'environ["XRAYDESK_', 'getenv("XRAYDESK_'):
            assert reader not in text, f"{source} reads a variable itself"
