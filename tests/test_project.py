"""Project hygiene: CI runs the README's test command, and the tree stays ruff clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)
    commands = [b.strip() for b in blocks if b.strip().endswith("pytest")]
    assert len(commands) == 1, "the README must give exactly one test command"
    return commands[0]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _readme_test_command() in ci.splitlines()
    assert "QT_QPA_PLATFORM=offscreen" in ci
    assert "XRAYDESK_REQUIRE_DATA=1" in ci


def test_readme_gives_an_app_command():
    text = (ROOT / "README.md").read_text()
    assert "pip install . && xraydesk" in text


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it is part of the [test] extra)")
    check = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_no_module_below_gui_imports_qt():
    offenders = []
    for path in (ROOT / "xraydesk").rglob("*.py"):
        if "gui" in path.relative_to(ROOT / "xraydesk").parts:
            continue
        if re.search(r"^\s*(from|import)\s+(PySide6|PyQt|shiboken)", path.read_text(), re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
