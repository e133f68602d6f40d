"""Issue 19 #1: the app checks the Qt xcb plugin's system libraries before Qt aborts.

The missing library is real: a shared object built here with a DT_NEEDED entry on a
library that was deleted after linking, installed as ``libqxcb.so`` in a folder that
QT_QPA_PLATFORM_PLUGIN_PATH (which Qt itself honours) points at. ``ldd`` then reports it
"not found", exactly as it reports libxcb-icccm.so.4 on a stock desktop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from xraydesk import qt_preflight
from xraydesk.qt_preflight import PreflightProblem

ABSENT = "libxraydesk-test-absent.so.1"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("ldd") is None,
    reason="the xcb plugin check is for Linux with ldd",
)


def build_plugin(folder: Path, needs_absent: bool) -> Path:
    """``folder/platforms/libqxcb.so``: a real shared object, needing ``ABSENT`` or not."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a shared object with a missing dependency")
    source = folder / "stub.c"
    source.write_text("int xraydesk_stub(void) { return 1; }\n")
    platforms = folder / "platforms"
    platforms.mkdir(parents=True)
    command = [cc, "-shared", "-fPIC", "-o", str(platforms / "libqxcb.so"), str(source)]
    if needs_absent:
        dep = folder / "dep.so"
        subprocess.run(
            [cc, "-shared", "-fPIC", f"-Wl,-soname,{ABSENT}", "-o", str(dep), str(source)],
            check=True,
        )
        command += ["-Wl,--no-as-needed", str(dep)]
    subprocess.run(command, check=True)
    if needs_absent:
        (folder / "dep.so").unlink()  # linked against, then gone: "not found"
    return platforms / "libqxcb.so"


def xcb_env(platforms: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "WAYLAND"))}
    env.update(QT_QPA_PLATFORM="xcb", QT_QPA_PLATFORM_PLUGIN_PATH=str(platforms), **extra)
    return env


def test_a_missing_library_is_named_and_the_app_exits_1_not_134(tmp_path):
    plugin = build_plugin(tmp_path, needs_absent=True)
    assert qt_preflight.missing_libraries(plugin) == (ABSENT,)
    env = {**xcb_env(plugin.parent), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "xraydesk"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert ABSENT in done.stderr and str(plugin) in done.stderr
    assert f"pacman -F {ABSENT}" in done.stderr and f"apt-file search {ABSENT}" in done.stderr
    assert "Traceback" not in done.stderr


def test_nothing_is_said_when_every_library_is_there(tmp_path):
    plugin = build_plugin(tmp_path, needs_absent=False)
    assert qt_preflight.missing_libraries(plugin) == ()
    assert qt_preflight.check(xcb_env(plugin.parent), "linux") is None


def test_only_when_qt_will_use_xcb(tmp_path):
    plugin = build_plugin(tmp_path, needs_absent=True)
    env = xcb_env(plugin.parent)
    assert qt_preflight.check(env, "linux") == PreflightProblem(plugin, (ABSENT,))
    for platform in ("offscreen", "wayland", "wayland;xcb", "minimal"):
        assert qt_preflight.check({**env, "QT_QPA_PLATFORM": platform}, "linux") is None
    assert qt_preflight.check({**env, "QT_QPA_PLATFORM": "xcb:nograb"}, "linux") is not None
    unset = {k: v for k, v in env.items() if k != "QT_QPA_PLATFORM"}
    assert qt_preflight.check(unset, "linux") is not None  # Qt's default on X11
    wayland = {**unset, "XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}
    assert qt_preflight.check(wayland, "linux") is None
    assert qt_preflight.check(env, "darwin") is None and qt_preflight.check(env, "win32") is None


def test_screenshots_without_a_display_skip_the_check(tmp_path):
    plugin = build_plugin(tmp_path, needs_absent=True)
    env = {k: v for k, v in xcb_env(plugin.parent).items() if k not in ("QT_QPA_PLATFORM",)}
    env.pop("DISPLAY", None)
    assert qt_preflight.will_run_offscreen(["--screenshot", "o.png", "x.png"], env)
    assert not qt_preflight.will_run_offscreen(["x.png"], env)
    assert not qt_preflight.will_run_offscreen(["--screenshot", "o.png"], {**env, "DISPLAY": ":0"})


def test_the_message_gives_the_packages_of_each_distribution():
    problem = PreflightProblem(
        Path("/x/libqxcb.so"), ("libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libEGL.so.1")
    )
    text = problem.message()
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1 libegl1" in text
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms libglvnd-egl" in text
    assert "sudo pacman -S --needed xcb-util-wm xcb-util-keysyms libglvnd" in text
    shared = PreflightProblem(Path("/x"), ("libxcb-shape.so.0", "libxcb-randr.so.0")).message()
    assert "sudo dnf install libxcb\n" in shared  # one package for both, named once


def test_ldd_output_is_parsed_as_ldd_writes_it():
    output = (
        "\tlinux-vdso.so.1 (0x00007ffd)\n"
        "\tlibxcb-icccm.so.4 => not found\n"
        "\tlibQt6Gui.so.6 => /venv/PySide6/Qt/lib/libQt6Gui.so.6 (0x00007f)\n"
        "\tlibxcb-keysyms.so.1 => not found\n"
        "\tlibxcb-icccm.so.4 => not found\n"
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n"
    )
    assert qt_preflight.parse_ldd(output) == ("libxcb-icccm.so.4", "libxcb-keysyms.so.1")
