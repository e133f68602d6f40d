"""Project hygiene: CI runs the README's test command, and the tree stays ruff clean."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT


def _readme_test_command() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)
    commands = [b.strip() for b in blocks if b.strip().endswith("pytest")]
    assert len(commands) == 1, "the README must give exactly one test command"
    return commands[0]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert _readme_test_command() in ci.splitlines()
    assert "QT_QPA_PLATFORM=offscreen" in ci
    assert "XRAYDESK_REQUIRE_DATA=1" in ci


def _readme_section(title: str) -> str:
    text = (REPO_ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"the README has no '## {title}' section"
    return match.group(1)


def test_readme_app_command_runs_the_declared_entry_point():
    """The README's install-and-run line ends in ``xraydesk``: that must be the console
    script pyproject declares, and its target must be the CLI's main function."""
    blocks = re.findall(r"```bash\n(.*?)\n```", _readme_section("Set up"), flags=re.S)
    [command] = [b.strip() for b in blocks if "pip install ." in b and "pytest" not in b]
    steps = [step.strip() for step in command.split("&&")]
    assert "pip install ." in steps and steps[-1] == "xraydesk", steps
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    target = project["scripts"]["xraydesk"]
    module, _, function = target.partition(":")
    assert callable(getattr(importlib.import_module(module), function)), target
    assert target == "xraydesk.cli:main"
    minimum = re.search(r"Python (3\.\d+) or newer", _readme_section("Set up"))
    assert minimum and project["requires-python"] == f">={minimum.group(1)}"


def _help(command: tuple[str, ...]) -> str:
    """``xraydesk [COMMAND...] --help`` as text; fails if argparse refuses the command."""
    from xraydesk.cli import build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        build_parser().parse_args([*command, "--help"])
    assert done.value.code == 0, f"xraydesk {' '.join(command)}: no such subcommand"
    return out.getvalue()


def _command_words(words: list[str]) -> tuple[str, ...]:
    """The (sub)command words of a synopsis line: lowercase words before any argument."""
    command = []
    for word in words[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        command.append(word)
    return tuple(command)


def test_readme_command_line_synopsis_matches_the_parser():
    """Every subcommand and --option in the README's synopsis exists in the parser
    (read through its --help text: argparse has no public introspection)."""
    blocks = re.findall(r"```text\n(.*?)\n```", _readme_section("Command line"), flags=re.S)
    helps: dict[tuple[str, ...], str] = {}
    current: tuple[str, ...] = ()
    checked = 0
    for line in blocks[0].splitlines():
        words = line.split()
        if words[:1] == ["xraydesk"]:
            current = _command_words(words)
        if current not in helps:
            helps[current] = _help(current)
        for option in re.findall(r"(--[a-z][a-z-]*)", line):
            assert re.search(rf"{option}\b", helps[current]), f"{option} in: {line.strip()}"
            checked += 1
    assert checked >= 10 and len(helps) >= 4


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it is part of the [test] extra)")
    check = subprocess.run([ruff, "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


QT_PREFIXES = ("PySide6", "shiboken6", "PyQt5", "PyQt6")
_IMPORT_ALL = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
qt = sorted(m for m in sys.modules if m.split(".")[0] in {prefixes!r})
print(json.dumps(qt))
"""


# One interpreter per layer: a few at once keep the test near 15 s on two cores, where one
# per package (each importing torch) took 40 s under load.
LAYER_OF = {"imaging": "imaging, viewer, top level", "viewer": "imaging, viewer, top level",
            "xraydesk": "imaging, viewer, top level", "model": "model, explain",
            "explain": "model, explain", "batch": "batch", "trainer": "trainer, cli",
            "cli": "trainer, cli"}  # fmt: skip


def _modules_by_package() -> dict[str, list[str]]:
    """Every module of xraydesk outside xraydesk.gui, grouped by top-level package
    (``__main__`` is left out: importing it runs the app)."""
    groups: dict[str, list[str]] = {}
    for path in sorted((REPO_ROOT / "xraydesk").rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if "gui" in parts or parts[-1] == "__main__":
            continue
        in_package = len(parts) > 1 and (REPO_ROOT / "xraydesk" / parts[1]).is_dir()
        package = parts[1] if in_package else "xraydesk"
        groups.setdefault(package, []).append(".".join(parts))
    return groups


def _qt_modules_after_importing(groups: dict[str, list[str]]) -> dict[str, list[str]]:
    """One fresh interpreter per group, all running at once; Qt modules each one loaded."""
    script = _IMPORT_ALL.format(prefixes=set(QT_PREFIXES))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    procs = {
        group: subprocess.Popen(
            [sys.executable, "-c", script, *names],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        for group, names in groups.items()
    }
    loaded = {}
    for group, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"importing {group} failed:\n{err}"
        loaded[group] = json.loads(out)
    return loaded


def test_no_module_below_gui_imports_qt():
    """Imports each module in fresh interpreters, so an indirect import (a helper that
    imports a module that imports Qt) is caught, unlike a search of the source text.
    The control group proves the check sees Qt when it is there."""
    packages = _modules_by_package()
    assert set(LAYER_OF) <= set(packages)
    assert "xraydesk.imaging.dicom" in packages["imaging"]
    groups: dict[str, list[str]] = {}
    for package, modules in packages.items():
        groups.setdefault(LAYER_OF.get(package, package), []).extend(modules)  # new: its own
    control = {"control (a GUI module)": ["xraydesk.gui.qt_images"]}
    loaded = _qt_modules_after_importing({**groups, **control})
    assert "PySide6" in loaded.pop("control (a GUI module)")
    assert {group: qt for group, qt in loaded.items() if qt} == {}
