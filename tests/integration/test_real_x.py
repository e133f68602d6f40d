"""Issue 29: the GUI tests that depend on a window manager also pass in a real X server.

The offscreen layout test passed while the real window buried the image. Here Xvfb
(1600 x 1000) with openbox runs the all-actions test and the first-launch test in a
fresh pytest process with ``QT_QPA_PLATFORM=xcb`` (this process already has its one
offscreen QApplication). Without Xvfb or the X11 libraries Qt needs, it skips, except
under XRAYDESK_REQUIRE_DATA=1 (CI), where it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.paths import REPO_ROOT
from tests.xserver import XServer, XServerMissing
from xraydesk import qt_preflight

pytestmark = pytest.mark.integration  # a real X server (Xvfb and openbox) per test

REAL_X_FILES = ("tests/gui/test_all_actions.py", "tests/gui/test_first_launch.py")
RUN_TIMEOUT_S = 900


def _unavailable(reason: str) -> None:
    if os.environ.get("XRAYDESK_REQUIRE_DATA") == "1":
        pytest.fail(f"{reason}; XRAYDESK_REQUIRE_DATA=1 forbids skipping the real X tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def x_server():
    """Xvfb + openbox on a free display for the session, stopped afterwards."""
    server = XServer()
    try:
        server.start()
    except XServerMissing as exc:
        _unavailable(str(exc))
    problem = qt_preflight.check(server.env())
    if problem is not None:
        server.stop()
        _unavailable(problem.message())
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.data
def test_gui_actions_and_first_launch_pass_in_a_real_x_server(x_server, shared_data, tmp_path):
    env = x_server.env(
        XRAYDESK_REAL_X="1",
        XRAYDESK_TEST_DATA=str(shared_data),
        XRAYDESK_DATA_DIR=str(tmp_path / "data"),
    )
    command = [sys.executable, "-m", "pytest", *REAL_X_FILES, "-p", "no:cacheprovider", "-q"]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert " passed" in output and "skipped" not in output, output[-3000:]
