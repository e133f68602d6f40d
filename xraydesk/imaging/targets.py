"""Whether a file may be written at a path: the one check both front doors run before a
save (the command line's --csv, --json, reports; the desktop app's exports).

Why here, below both: each front door had its own copy, and each copy missed what the
other caught (the command line refused an image file, the app the film on screen).
Why before the work: a named pipe blocked the window for good and a rename over a device
replaced /dev/null, and a save aimed at a film replaced the film with a table or a
screenshot of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from xraydesk.files import non_file_kind, path_problem


def write_problem(
    path: Path,
    keep: Iterable[Path | None] = (),
    kept: str = "an input of this command",
    refuse_images: bool = False,
) -> str | None:
    """Why no file may be written at ``path``; None when one may. In order: a path that
    names nothing (empty, too long, a link loop), a folder, named pipe or device in the
    way, one of the files in ``keep`` (``kept`` says what they are), and with
    ``refuse_images`` any existing image file (a command line asks no "replace?"; the
    app's save dialog does, so re-exporting a heat map over an earlier one stays
    possible)."""
    problem = path_problem(path)
    if problem is not None:
        return problem
    kind = non_file_kind(path)
    if kind is not None:
        return f"it is {kind}, not a file"
    if not path.is_file():
        return None
    if any(_same_file(path, other) for other in keep if other is not None):
        return f"it is {kept}, not overwritten"
    if refuse_images:
        from xraydesk.imaging.discover import claims_image  # numpy: only when it runs

        if claims_image(path):
            return "it is an image file, not overwritten"
    return None


def _same_file(path: Path, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):
        return False
