"""Size limits for the package: no module over 500 lines, no class over 400.

Why: big modules and classes hide several responsibilities; the limits keep each file
readable on its own and force new code into small, well-named modules (issue 24).
"""

from __future__ import annotations

import ast

from tests.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "xraydesk"
MODULE_LIMIT = 500
CLASS_LIMIT = 400


def _sizes() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Return (module sizes, class sizes) for every .py file under xraydesk/."""
    modules: list[tuple[int, str]] = []
    classes: list[tuple[int, str]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PACKAGE.parent).as_posix()
        modules.append((len(text.splitlines()), rel))
        for node in ast.walk(ast.parse(text, filename=rel)):
            if isinstance(node, ast.ClassDef):
                length = node.end_lineno - node.lineno + 1
                classes.append((length, f"{rel}::{node.name}"))
    return sorted(modules, reverse=True), sorted(classes, reverse=True)


def _report(modules: list[tuple[int, str]], classes: list[tuple[int, str]]) -> str:
    lines = ["largest modules:"]
    lines += [f"  {n:5d}  {name}" for n, name in modules[:5]]
    lines.append("largest classes:")
    lines += [f"  {n:5d}  {name}" for n, name in classes[:5]]
    return "\n".join(lines)


def test_the_size_walk_sees_the_package() -> None:
    modules, classes = _sizes()
    names = {name for _, name in modules}
    assert "xraydesk/errors.py" in names
    assert any(name.endswith("::XRayDeskError") for _, name in classes)
    assert len(modules) > 50


def test_no_module_over_500_lines_and_no_class_over_400() -> None:
    modules, classes = _sizes()
    big_modules = [f"{name} ({n} lines)" for n, name in modules if n > MODULE_LIMIT]
    big_classes = [f"{name} ({n} lines)" for n, name in classes if n > CLASS_LIMIT]
    assert not big_modules and not big_classes, (
        f"modules over {MODULE_LIMIT} lines: {big_modules or 'none'}; "
        f"classes over {CLASS_LIMIT} lines: {big_classes or 'none'}\n" + _report(modules, classes)
    )
