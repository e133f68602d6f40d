"""The layers go one way and no modules import each other in a circle.

The contracts live in pyproject.toml ([tool.importlinter]); import-linter checks them on
the import graph grimp builds from the source, which sees imports inside functions too
(a lazy import is still a dependency). Imports under ``if TYPE_CHECKING:`` never run and
are left out, here as in the contracts.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from tests.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "xraydesk"


def _contracts() -> list[dict]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config["contracts"]


def _layer_names() -> set[str]:
    [layers] = [c for c in _contracts() if c["type"] == "layers"]
    names = set()
    for layer in layers["layers"]:
        for name in re.split(r"[|:]", layer):
            names.add(name.strip().strip("()"))
    return names


def _top_level_modules() -> set[str]:
    """Every package and module directly under xraydesk/ (``__init__`` aside)."""
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return packages | modules


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of ``graph`` (module -> modules it imports)
    that hold more than one module: each is an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def _import_graph() -> dict[str, set[str]]:
    built = grimp.build_graph("xraydesk", exclude_type_checking_imports=True, cache_dir=None)
    return {m: set(built.find_modules_directly_imported_by(m)) for m in built.modules}


def test_import_contracts_are_kept():
    """lint-imports as a contributor runs it: any broken contract (a lower layer importing
    a higher one, two independent packages importing each other, Qt below the GUI) fails
    here with import-linter's own report of the offending import chain."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache", "--config", str(REPO_ROOT / "pyproject.toml")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", done.stdout)
    assert kept and int(kept.group(1)) == len(_contracts()), done.stdout


def test_every_package_has_its_layer():
    """A new package (or top-level module) must be placed in the layers, or the contract
    would say nothing about what it may import."""
    missing = _top_level_modules() - _layer_names()
    assert not missing, f"add to [tool.importlinter] layers in pyproject.toml: {missing}"


def test_no_qt_contract_covers_everything_below_the_gui():
    [no_qt] = [c for c in _contracts() if c.get("id") == "no-qt-below-gui"]
    covered = {m.removeprefix("xraydesk.") for m in no_qt["source_modules"]}
    assert "PySide6" in no_qt["forbidden_modules"]
    assert covered == _top_level_modules() - {"gui", "cli", "__main__"}


def test_no_import_circles_among_xraydesk_modules():
    """Counting imports inside functions: a lazy import that closes a circle still ties
    the modules together (and can fail half-initialised, depending on import order)."""
    circles = strongly_connected(_import_graph())
    assert circles == [], [sorted(c) for c in circles]


def test_circle_finder_sees_a_circle():
    """Control: the finder reports a three-module circle (lazy or not, grimp records it
    as an import) and nothing for a chain."""
    chain = {"a": {"b"}, "b": {"c"}, "c": set()}
    assert strongly_connected(chain) == []
    circle = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(circle) == [{"a", "b", "c"}]


def test_readme_map_names_every_package():
    """The README's contributor map is where a newcomer looks for a package."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("## For contributors") :]
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    missing = {name for name in packages if not re.search(rf"^\s+{name}/\s", section, re.M)}
    assert not missing, f"name these packages in the README's contributor map: {missing}"
