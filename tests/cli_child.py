"""``xraydesk ARGS`` in a fresh interpreter, reporting its exit status and every module it
loaded: what start-up, light-build and first-run tests judge a command by."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.paths import REPO_ROOT

# Runs in the child after ``prelude``: the command line, then a report of what it loaded.
CHILD = """
import json, sys
from xraydesk.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:  # --version and --help leave through argparse
    code = exc.code
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


@dataclass(frozen=True)
class ChildRun:
    code: int | str | None
    modules: set[str]
    stdout: str
    stderr: str


def run_cli(
    tmp_path: Path, *args: str, prelude: str = "", timeout: float = 600, **env: str
) -> ChildRun:
    """``xraydesk ARGS`` in a new interpreter (``prelude``: code run first, e.g. an import
    blocker; ``env``: variables set for it)."""
    report = tmp_path / f"child-{len(list(tmp_path.glob('child-*.json')))}.json"
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", prelude + CHILD, str(report), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": path, **env},
    )
    assert report.is_file(), done.stderr[-3000:]
    data = json.loads(report.read_text())
    return ChildRun(data["code"], set(data["modules"]), done.stdout, done.stderr)
