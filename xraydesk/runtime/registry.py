"""The inference runtimes as data: one ``RuntimeSpec`` per runtime XRayDesk can run on.

``runtime.select`` asks the registry which runtimes are installed, which precisions each
has and which backend class runs an exported graph; a runtime name it does not know is an
error listing the known ones, never a silent default. Asked without importing the
runtimes (the light build has no torch; OpenVINO is imported only when used).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from xraydesk.optional import FULL_BUILD_HINT, extra_hint
from xraydesk.optional import installed as _installed
from xraydesk.runtime.backend import Precision, RuntimeUnavailable
from xraydesk.runtime.names import RUNTIME_NAMES

if TYPE_CHECKING:
    from xraydesk.runtime.backend import Backend

AUTO = "auto"


@dataclass(frozen=True)
class RuntimeSpec:
    """One runtime: its name, the package it needs, its precisions on a CPU and the class
    that runs an exported graph on it (``module:Class``; empty for torch, which runs the
    network itself)."""

    name: str
    package: str
    precisions: tuple[Precision, ...]
    backend: str = ""

    @property
    def title(self) -> str:
        """What users see, e.g. "ONNX Runtime"."""
        return RUNTIME_NAMES[self.name]

    def unavailable_reason(self) -> str | None:
        """Why this runtime cannot run here (its package, ``package``, is not installed);
        None if it can."""
        if _installed(self.package):
            return None
        if self.name == "torch":
            return f"runtime torch: {FULL_BUILD_HINT}"
        return f"runtime {self.name} is not installed: {how_to_get(self)}"

    def is_available(self) -> bool:
        return self.unavailable_reason() is None

    @property
    def exported(self) -> bool:
        """Runs an exported graph (not the torch network)."""
        return bool(self.backend)

    def backend_class(self) -> type[Backend]:
        """The class running an exported graph on this runtime (imported now)."""
        if not self.backend:
            raise RuntimeUnavailable(f"runtime {self.name} runs no exported graph")
        module, _, name = self.backend.partition(":")
        return getattr(importlib.import_module(module), name)


_SPECS = (
    RuntimeSpec("torch", "torch", ("fp32", "bf16")),
    RuntimeSpec(
        "onnxruntime",
        "onnxruntime",
        ("fp32", "int8"),
        "xraydesk.runtime.onnxruntime_backend:OnnxRuntimeBackend",
    ),
    RuntimeSpec(
        "openvino",
        "openvino",
        ("fp32", "bf16", "int8"),
        "xraydesk.runtime.openvino_backend:OpenVinoBackend",
    ),
)
REGISTRY: Mapping[str, RuntimeSpec] = MappingProxyType({s.name: s for s in _SPECS})


def known_runtimes() -> tuple[str, ...]:
    """Every runtime name a user may choose, ``auto`` first."""
    return (AUTO, *REGISTRY)


def runtime_spec(name: str, source: str = "the caller") -> RuntimeSpec:
    """The spec of ``name``; an unknown name is an error naming ``source`` (a variable, an
    option) and listing the known runtimes."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise RuntimeUnavailable(
            f"unknown runtime {name!r} (from {source}): choose one of {', '.join(known_runtimes())}"
        )
    return spec


def available_runtimes() -> list[str]:
    """The runtimes installed here, in the registry's order, without importing them."""
    return [name for name, spec in REGISTRY.items() if spec.is_available()]


def how_to_get(spec: RuntimeSpec) -> str:
    """How a user gets a missing runtime: pip from source; an installed app cannot."""
    if getattr(sys, "frozen", False):  # an installed app: pip cannot add to it
        return "this build of XRayDesk does not include it; choose another runtime"
    return extra_hint(spec.name)
