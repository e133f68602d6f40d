"""When a result must not be trusted: stable warning codes and the checks that raise them.

Qt-free, so the batch engine, the CLI, the exports and the GUI all give the same
warnings. ``codes`` holds the codes (issues 14 and 19), ``population`` the check of a
patient's age against the model card's population, ``verdict`` the one function every
front door turns a model's outputs into a result with (``decide``, ``decide_all`` and
the ``Verdict`` record), and ``check`` the one-image ``TrustCheck`` built on it.
``Verdict``, ``decide``, ``decide_all``, ``TrustCheck`` and ``CheckedResult`` are
imported on first use: they pull in the classifier, which the codes alone do not need.
"""

from typing import Any

from xraydesk.trust.codes import WARNING_CODES, ResultWarning
from xraydesk.trust.population import population_warnings

_LAZY = {
    "Verdict": "xraydesk.trust.verdict",
    "decide": "xraydesk.trust.verdict",
    "decide_all": "xraydesk.trust.verdict",
    "TrustCheck": "xraydesk.trust.check",
    "CheckedResult": "xraydesk.trust.check",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "WARNING_CODES",
    "CheckedResult",
    "ResultWarning",
    "TrustCheck",
    "Verdict",
    "decide",
    "decide_all",
    "population_warnings",
]
