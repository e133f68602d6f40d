"""XRayDesk: a local diagnostic assistant for chest radiographs.

Layers, one way only: ``imaging`` (files to pixels) -> ``model`` and ``explain``
(pixels to probabilities and heat maps) -> ``batch`` and ``train`` (engines) ->
``cli`` and ``gui`` (front doors). Nothing below ``gui`` imports Qt.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xraydesk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
