"""The whole PyInstaller build with its frozen self-test (opt-in, slow: set
XRAYDESK_BUILD_TEST=1). Moved from tests/project/test_packaging.py, which keeps the
checks of build.py, the spec and the archive that need no PyInstaller run."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import pytest

from tests.paths import REPO_ROOT
from xraydesk import __version__

PACKAGING = REPO_ROOT / "packaging"


def _build(*options: str) -> tuple[subprocess.CompletedProcess, str]:
    """``packaging/build.py OPTIONS``, checked: it succeeded and its frozen self-test passed
    (the summary came from the built app). Returns the run and the tail of its output."""
    pytest.importorskip("PyInstaller", reason='pip install -e ".[package]"')
    result = subprocess.run(
        [sys.executable, str(PACKAGING / "build.py"), *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    tail = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, tail
    assert "build: self-test passed" in result.stdout
    assert '"frozen": true' in result.stdout
    return result, tail


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("XRAYDESK_BUILD_TEST") != "1",
    reason="the PyInstaller build takes minutes and gigabytes: set XRAYDESK_BUILD_TEST=1",
)
@pytest.mark.integration
def test_frozen_build_passes_its_self_test():
    """python packaging/build.py: PyInstaller, the frozen self-test, the archive."""
    started = time.time()
    result, tail = _build()
    # OpenVINO, by default, with its CPU plugin; ONNX Runtime left out for it
    assert '"openvino"' in result.stdout and '"onnxruntime"' not in result.stdout, tail
    internal = REPO_ROOT / "dist" / "XRayDesk" / "_internal"
    if internal.is_dir():  # Linux and Windows (macOS: inside XRayDesk.app)
        assert any(internal.glob("openvino/libs/*openvino_intel_cpu_plugin*")), tail
        assert not (internal / "onnxruntime").exists()
    if sys.platform.startswith("linux"):
        name = f"XRayDesk-{__version__}-linux-{platform.machine().lower()}.tar.gz"
        archive = REPO_ROOT / "dist" / name
        assert archive.is_file(), tail
        assert archive.stat().st_mtime >= started - 1, "the archive is left from an earlier build"


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("XRAYDESK_BUILD_TEST") != "1",
    reason="the PyInstaller build takes minutes and gigabytes: set XRAYDESK_BUILD_TEST=1",
)
@pytest.mark.integration
def test_frozen_light_build_passes_its_self_test():
    """python packaging/build.py --light: no torch in the bundle, the frozen self-test
    passes on ONNX Runtime, the -light- archive, and the folder within issue 13's 600 MB."""
    pytest.importorskip("onnxruntime", reason='pip install -e ".[package,light]"')
    started = time.time()
    result, tail = _build("--light")
    assert '"torch": null' in result.stdout  # the summary came from an app without torch
    folder = REPO_ROOT / "dist" / "XRayDesk-light"
    leaked = [
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.name.split(".")[0] in ("torch", "torchvision", "pytorch_grad_cam", "triton")
        or path.name.startswith(("libtorch", "libc10", "libcudnn", "libcublas"))
    ]
    assert not leaked, leaked[:20]
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    assert size <= 600 * 10**6, f"the light build is {size / 10**6:.0f} MB (issue 13: 600 MB)"
    if sys.platform.startswith("linux"):
        name = f"XRayDesk-{__version__}-light-linux-{platform.machine().lower()}.tar.gz"
        archive = REPO_ROOT / "dist" / name
        assert archive.is_file(), tail
        assert archive.stat().st_mtime >= started - 1, "the archive is left from an earlier build"
