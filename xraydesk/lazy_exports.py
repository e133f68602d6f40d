"""A package's public names imported on first use (PEP 562), not with the package.

Why: ``xraydesk --version``, ``xraydesk models`` and the viewer's first window must not
pay for torch, the grad-cam package or pynetdicom, which the packages' modules import.
A package lists ``name -> defining module`` and sets
``__getattr__ = lazy_getattr(__name__, EXPORTS)``; its ``TYPE_CHECKING`` imports keep
type checkers and editors seeing the real names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` that imports ``exports[name]`` when ``name`` is used."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
