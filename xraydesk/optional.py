"""Which optional packages this installation has, asked without importing them.

The light build ships without torch (and may ship without OpenVINO or ONNX Runtime); the
code asks here before taking a path that needs one, so a missing package becomes a
choice (another runtime, a clear message) instead of an ImportError deep in a worker.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

FULL_BUILD_HINT = (
    "the light build of XRayDesk has no PyTorch; install the full build (or, from source, "
    "pip install xraydesk with torch) for this"
)


def installed(package: str) -> bool:
    """Whether ``package`` can be imported here; a package blocked in ``sys.modules``
    (set to None, as the light build's tests do) counts as missing."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError, AttributeError):  # blocked, or half-removed
        return False


def extra_hint(extra: str) -> str:
    """The pip command that adds an optional extra (``spark``, ``openvino``...) here.

    Why not ``pip install "xraydesk[spark]"``: XRayDesk is not published on a package
    index, so that command finds nothing. Installed from a source checkout (the usual
    case: ``pip install -e .``), the checkout is named; otherwise (a wheel built from
    one) the wheel's name and the extra are what pip needs with the wheel at hand."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return f"pip install -e '{checkout}[{extra}]'"
    return f"pip install 'xraydesk[{extra}]' (from the XRayDesk wheel or source folder)"


def has_torch() -> bool:
    return installed("torch")


def float32_array(values: Any) -> np.ndarray:
    """A contiguous float32 numpy array from a numpy array or a (CPU or GPU) torch tensor,
    without importing torch: the light build has none, and training hands its tensors
    to the same preprocessing and runtimes."""
    if not isinstance(values, np.ndarray) and hasattr(values, "detach"):
        values = values.detach().float().cpu().numpy()
    return np.ascontiguousarray(values, dtype=np.float32)
