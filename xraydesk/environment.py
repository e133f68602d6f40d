"""Every ``XRAYDESK_*`` environment variable XRayDesk reads, parsed in one place.

The variables (unset or empty: the default):

``XRAYDESK_DATA_DIR`` (a folder; default: the per-user data folder)
    replaces the data folder everywhere (model library, results database, caches), for
    tests and portable installs.
``XRAYDESK_RUNTIME_CACHE`` (a folder; default: ``<data folder>/cache/runtime``)
    replaces the folder of exported graphs (the tests share one per session).
``XRAYDESK_RUNTIME`` (``auto``, ``torch``, ``onnxruntime`` or ``openvino``; default: auto)
    the inference runtime, unless the caller names one; the runtime registry
    (``runtime.registry``) refuses a name it does not know, listing the known ones.
``XRAYDESK_PRECISION`` (``auto`` or ``fp32``; default: auto)
    ``fp32`` turns reduced precision (bf16) off everywhere: reference runs, debugging.
``XRAYDESK_GATE_RUNTIME`` (``auto`` or ``numpy``; default: auto)
    ``numpy`` runs the input gate's and the appearance heads' small networks in numpy
    even where OpenVINO could run them (``runtime.gate_graph``): the light build's path,
    for comparing and debugging; read when the gate is loaded, once per process.
``XRAYDESK_DEBUG`` (``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``;
default: off) the self-test prints the traceback of an unexpected failure.

Read at call time (``from_environ()``), never at import: a test that sets a variable, or
a process that changes one before loading a model, is seen. A bad value is a
``SettingError`` naming the variable and what is wrong with the value, never a silent
default. Letter case and surrounding spaces of the choices do not matter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xraydesk.errors import XRayDeskError

DATA_DIR = "XRAYDESK_DATA_DIR"
RUNTIME_CACHE = "XRAYDESK_RUNTIME_CACHE"
RUNTIME = "XRAYDESK_RUNTIME"
PRECISION = "XRAYDESK_PRECISION"
DEBUG = "XRAYDESK_DEBUG"
GATE_RUNTIME = "XRAYDESK_GATE_RUNTIME"

PrecisionSetting = Literal["auto", "fp32"]
PRECISIONS: tuple[PrecisionSetting, ...] = ("auto", "fp32")
GateRuntimeSetting = Literal["auto", "numpy"]
GATE_RUNTIMES: tuple[GateRuntimeSetting, ...] = ("auto", "numpy")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingError(XRayDeskError):
    """An ``XRAYDESK_*`` variable holds a value XRayDesk cannot use."""

    def __init__(self, variable: str, value: str, problem: str) -> None:
        self.variable = variable
        self.value = value
        super().__init__(f"{variable}={value!r}: {problem}")


@dataclass(frozen=True)
class Environment:
    """The parsed variables (see the module docstring); None: not set."""

    data_dir: Path | None = None
    runtime_cache: Path | None = None
    runtime: str | None = None  # lower case; checked against the runtime registry
    precision: PrecisionSetting = "auto"
    debug: bool = False
    gate_runtime: GateRuntimeSetting = "auto"

    @property
    def reduced_precision_allowed(self) -> bool:
        """False under ``XRAYDESK_PRECISION=fp32``: every runtime stays at fp32."""
        return self.precision != "fp32"


def from_environ(env: Mapping[str, str] | None = None) -> Environment:
    """The variables of ``env`` (default: ``os.environ`` as it is now), parsed and
    checked; raises ``SettingError`` for the first bad one."""
    env = os.environ if env is None else env
    return Environment(
        data_dir=folder_setting(DATA_DIR, env),
        runtime_cache=folder_setting(RUNTIME_CACHE, env),
        runtime=_name(env, RUNTIME),
        precision=parse_precision(env.get(PRECISION, ""), PRECISION),
        debug=_flag(env, DEBUG),
        gate_runtime=_gate_runtime(env),
    )


def parse_precision(value: str | None, source: str) -> PrecisionSetting:
    """``auto`` or ``fp32`` from ``value`` (None or empty: auto); ``source`` names where the
    value came from in the error (a variable, an option)."""
    text = (value or "").strip().lower()
    if not text:
        return "auto"
    if text not in PRECISIONS:
        raise SettingError(source, value or "", f"choose one of {', '.join(PRECISIONS)}")
    return text  # type: ignore[return-value]  # one of PRECISIONS


def reduced_precision_allowed(precision: str | None = None) -> bool:
    """False for ``precision`` "fp32" (a caller's choice, e.g. Spark's ``--precision``
    passed to its executors as data); None: as ``XRAYDESK_PRECISION`` says, read now."""
    if precision is None:
        return from_environ().reduced_precision_allowed
    return parse_precision(precision, "precision") != "fp32"


def folder_setting(variable: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The folder one variable names (None: unset); for the data folder, which logging
    needs before a front door can report a bad value of any other variable."""
    env = os.environ if env is None else env
    value = env.get(variable, "")
    if not value:
        return None
    if not value.strip():
        raise SettingError(variable, value, "blank: set it to a folder, or unset it")
    return Path(value)


def _name(env: Mapping[str, str], variable: str) -> str | None:
    value = env.get(variable, "").strip().lower()
    return value or None


def _flag(env: Mapping[str, str], variable: str) -> bool:
    value = env.get(variable, "")
    text = value.strip().lower()
    if not text or text in _FALSE:
        return False
    if text in _TRUE:
        return True
    raise SettingError(variable, value, f"not a yes/no value ({'/'.join(_TRUE + _FALSE)})")


def _gate_runtime(env: Mapping[str, str]) -> GateRuntimeSetting:
    value = env.get(GATE_RUNTIME, "")
    text = value.strip().lower()
    if not text:
        return "auto"
    if text not in GATE_RUNTIMES:
        raise SettingError(GATE_RUNTIME, value, f"choose one of {', '.join(GATE_RUNTIMES)}")
    return text  # type: ignore[return-value]  # one of GATE_RUNTIMES
