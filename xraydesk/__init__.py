"""XRayDesk: a local diagnostic assistant for chest radiographs.

Layers, one way only: ``imaging`` (files to pixels) -> ``model`` -> ``runtime`` ->
``classifier`` (pixels to probabilities) -> ``explain`` and ``trust`` -> the engines
(``batch``, ``trainer``, ``viewer``; then ``dicomnet``, ``spark``, ``validate``,
``monitor``) -> ``gui`` and ``cli`` (front doors). Nothing below ``gui`` imports Qt.
pyproject.toml's import-linter contracts hold the exact order.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xraydesk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
