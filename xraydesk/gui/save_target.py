"""Where a save action of the desktop app may write, checked before anything is written.

Why: File > Export image given a named pipe blocked the window for good (Qt opened it and
waited for a reader), and given the path of the image on screen it replaced the film with
a screenshot of it. The lower layer's ``files.refuse_non_file_target`` says what is in
the way (a folder, a pipe, a device); this adds the files a save must never replace.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from xraydesk.errors import XRayDeskError
from xraydesk.files import path_problem, refuse_non_file_target
from xraydesk.printable import printable


def check_save_target(
    path: Path, what: str, keep: Iterable[Path | None] = (), kept: str = "the open image"
) -> None:
    """Raise ``XRayDeskError`` naming ``path`` and the cause when ``what`` ("the image",
    "the report") must not be written there: a path that names nothing, a folder, a
    named pipe or a device, or one of the files in ``keep`` (``kept`` says what they are:
    the image on screen, the images of a batch run)."""
    problem = path_problem(path)
    if problem is None:
        try:
            refuse_non_file_target(path)
        except OSError as exc:
            problem = "it is a folder" if exc.errno == errno.EISDIR else exc.strerror
    if problem is None and any(_same_file(path, other) for other in keep if other is not None):
        problem = f"it is {kept}: not overwritten"
    if problem is not None:
        raise XRayDeskError(f"{printable(path)}: cannot write {what} there ({problem}).")


def _same_file(path: Path, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):
        return False
