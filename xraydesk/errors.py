"""Typed, user-facing errors.

Every error a person can cause (a bad file, a missing model) is one of these, with a
message that names the file and the cause, so front doors print ``str(err)`` and never
a traceback.
"""

from __future__ import annotations

from pathlib import Path


class XRayDeskError(Exception):
    """Base class: ``str(err)`` is a complete sentence fit to show a user."""


class Cancelled(XRayDeskError):
    """The person (or the caller) asked a running task to stop: training, a batch, a data
    check, a forward pass. The one cancellation every engine raises and every front door
    catches. ``resumable``: the work done so far is kept and the task can continue."""

    def __init__(self, message: str = "Cancelled.", resumable: bool = True) -> None:
        super().__init__(message)
        self.resumable = resumable


class ImageLoadError(XRayDeskError):
    """A file could not be turned into a radiograph."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class ModelError(XRayDeskError):
    """A model could not be found, verified or loaded."""


class NoModelError(ModelError):
    """No model is installed or the named one does not exist."""
