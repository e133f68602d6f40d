"""Nothing leaves the machine and nothing is written outside the data folder (issue 26.3).

``import openvino`` used to send an "import" event to Google Analytics (a DNS query for
www.google-analytics.com) and write ``$HOME/intel/openvino_ga_cid`` and ``$HOME/intel/stats``
at every ``classify`` start. These tests run the real front door, ``xraydesk classify``
on the OpenVINO runtime, in a fresh interpreter (so OpenVINO is imported there for the
first time) with an empty HOME and an audit hook that records every socket call and
every file opened for writing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.paths import REPO_ROOT
from xraydesk.runtime.openvino_backend import installed

needs_openvino = pytest.mark.skipif(not installed(), reason="OpenVINO is not installed")

# Runs in the child: records socket calls and files opened for writing, then runs the CLI.
CHILD = r"""
import json, os, sys

# Opened before the hook, written with os.write (no audit event): events that happen at
# exit (OpenVINO's telemetry sent its event from an atexit handler) are recorded too.
record = os.open(os.environ["AUDIT_OUT"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)


def hook(event, args):
    if event.startswith("socket.") and event != "socket.__new__":
        os.write(record, (json.dumps([event, repr(args)[:200]]) + "\n").encode())
    elif event in ("open", "os.open") and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2]
        writes = any(f in mode for f in "wax+") if isinstance(mode, str) else False
        writes |= isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR))
        if writes:
            os.write(record, (json.dumps(["open", os.fsdecode(args[0])]) + "\n").encode())


sys.addaudithook(hook)
if sys.argv[1] == "classify":
    from xraydesk.cli import main

    sys.exit(main(sys.argv[1:]))
from xraydesk.runtime.openvino_backend import import_openvino

import_openvino().Core().available_devices
assert sys.modules["openvino_telemetry"] is None
"""


def _image(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (128, 128), dtype=np.uint8)).save(path)
    return path


def _classify_in_child(tmp_path: Path, model: Path, runtime: str) -> tuple[dict, Path, Path]:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    data.mkdir()
    audit = tmp_path / "audit.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XRAYDESK_", "CI"))}
    env.update(
        HOME=str(home),
        XRAYDESK_DATA_DIR=str(data),
        AUDIT_OUT=str(audit),
        PYTHONDONTWRITEBYTECODE="1",
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
    )
    image = _image(tmp_path / "film.png")
    args = ["classify", str(image), "--model", str(model), "--runtime", runtime, "--json"]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout.splitlines()[-1])
    # a verdict was reached (the gate withholds the class of this noise picture)
    assert row["error"] is None and (row["prediction"] or row["indeterminate"]), done.stdout
    return _events(audit), home, data


def _events(audit: Path) -> list[list[str]]:
    return [json.loads(line) for line in audit.read_text().splitlines()]


@needs_openvino
def test_classify_on_openvino_opens_no_socket_and_writes_nothing_outside_the_data_folder(
    tmp_path: Path, test_model_path: Path
):
    events, home, data = _classify_in_child(tmp_path, test_model_path, "openvino")
    sockets = [e for e in events if e[0].startswith("socket.")]
    # no name lookup, no connection: not even to loopback is needed for a classification
    assert sockets == [], sockets
    assert list(home.rglob("*")) == [], "classify wrote into HOME"
    written = [Path(e[1]) for e in events if e[0] == "open"]
    assert written, "the audit hook saw no write at all (the results are written somewhere)"
    allowed = (data.resolve(), Path(os.devnull))
    outside = [
        p
        for p in written
        if not any(p.resolve() == a or a in p.resolve().parents for a in allowed)
        and p.resolve().parent != tmp_path.resolve()  # the audit record itself
    ]
    assert outside == [], outside


@needs_openvino
def test_openvino_is_imported_with_its_telemetry_blocked(tmp_path: Path):
    """The switch itself, in a fresh interpreter: the one import path the app uses."""
    home = tmp_path / "home"
    home.mkdir()
    audit = tmp_path / "audit.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CI")}
    env.update(HOME=str(home), AUDIT_OUT=str(audit), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-c", CHILD, "import"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [e for e in _events(audit) if e[0].startswith("socket.")] == []
    assert list(home.rglob("*")) == []


def test_every_frozen_build_leaves_the_telemetry_package_out():
    """The PyInstaller spec: with OpenVINO or without, ``openvino_telemetry`` is excluded
    (the frozen app starts through the same ``import_openvino`` as well)."""
    import ast

    spec = REPO_ROOT / "packaging" / "xraydesk.spec"
    lists = [
        ast.literal_eval(node.value)
        for node in ast.walk(ast.parse(spec.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "OPENVINO_EXCLUDES" for t in node.targets)
    ]
    assert len(lists) == 2, lists  # the build with OpenVINO and the one without
    assert all("openvino_telemetry" in excludes for excludes in lists), lists
