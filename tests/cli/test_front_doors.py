"""Issue 29 #5 and the log file: what the front doors say, and where they log.

``xraydesk`` without a display said nothing useful (Qt's xcb-cursor message, exit 134);
``--help`` never mentioned ``xraydesk PATH``; ``self-test`` printed 241 lines of JSON;
and the error banner asked for "the log" while no log file existed.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import subprocess
import sys

import pytest

from tests.paths import REPO_ROOT
from xraydesk import logs, paths
from xraydesk.cli import main


def test_without_a_display_the_app_says_so_and_exits_1():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = ""
    done = subprocess.run(
        [sys.executable, "-m", "xraydesk"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "no display" in done.stderr
    assert "DISPLAY" in done.stderr and "WAYLAND_DISPLAY" in done.stderr
    assert "xcb-cursor" not in done.stderr and "Traceback" not in done.stderr


def test_help_says_how_to_open_an_image(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "xraydesk PATH" in out
    assert "xraydesk [PATH]" in out  # the usage line, too


@pytest.fixture
def bundled(monkeypatch, test_model_path):
    """The session's small test model stands in for the bundled models."""
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: test_model_path.parent)


def test_self_test_prints_a_short_summary_and_json_on_request(bundled, capsys):
    assert main(["self-test", "--no-window", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) <= 10, out
    assert "self-test passed" in lines[0]
    assert any("model test-3class" in line for line in lines)
    assert "{" not in out
    assert main(["self-test", "--json", "--no-window", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_a_cli_command_writes_the_rotated_log_file(capsys):
    assert main(["models"]) == 0
    path = logs.log_file()
    assert path.parent == paths.data_dir() / "logs"
    assert "started (xraydesk models)" in path.read_text(encoding="utf-8")
    rotating = logging.handlers.RotatingFileHandler
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, rotating)]
    assert [h.baseFilename for h in handlers] == [str(path)]  # one, however often set up
    assert handlers[0].maxBytes > 0 and handlers[0].backupCount > 0


def test_identifiers_never_reach_the_log_file():
    path = logs.setup("test")
    assert path is not None
    log = logging.getLogger("xraydesk.test")
    log.warning("bad file: PatientName=%s PatientID: %s", "DOE^JOHN", "PID-778899")
    try:
        raise ValueError("(0010,0020) Patient ID LO: PID-778899 accession AccessionNumber=ACC42")
    except ValueError:
        log.exception("while reading %s", "/tmp/x.dcm")
    logs.setup("test")  # closes the handler: everything is on disk
    text = path.read_text(encoding="utf-8")
    assert "bad file" in text and "/tmp/x.dcm" in text and "ValueError" in text
    for identifier in ("DOE", "JOHN", "PID-778899", "ACC42"):
        assert identifier not in text, text


def test_the_display_check_stays_out_of_the_way_where_qt_can_draw():
    from xraydesk.qt_preflight import no_display_message

    bare: dict[str, str] = {}
    assert no_display_message([], bare, "linux") is not None
    assert no_display_message([], {"DISPLAY": ":0"}, "linux") is None
    assert no_display_message([], {"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert no_display_message([], {"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert no_display_message(["--screenshot", "o.png", "x.png"], bare, "linux") is None
    assert no_display_message([], bare, "darwin") is None
    assert no_display_message([], bare, "win32") is None
    wrong = no_display_message([], {"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "w"}, "linux")
    assert wrong is not None and "DISPLAY is not set" in wrong
