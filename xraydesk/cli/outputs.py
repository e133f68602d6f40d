"""Checks on where ``xraydesk classify`` writes, made before anything is classified.

A heat-map folder that cannot be written used to cost a whole run for a warning per
file and exit 0; a CSV error used to say "the results are safe in the database" even for
single files, which are never recorded. These helpers make both true and early.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from xraydesk.errors import XRayDeskError
from xraydesk.files import non_file_kind
from xraydesk.printable import printable

NOTHING_CLASSIFIED = "nothing was classified"
STORED = "the results are safe in the database"
NOT_STORED = "the rows printed above are the only copy (single files are not recorded)"


def saved_note(recorded: bool) -> str:
    """What is left of the results when an output file fails mid-run, truthfully."""
    return STORED if recorded else NOT_STORED


def check_writable_folder(folder: Path, option: str, consequence: str = NOTHING_CLASSIFIED) -> None:
    """Create ``folder`` if needed and write (then remove) a probe file in it; raise a
    clear error naming the option, the folder and the cause. A probe, not ``os.access``:
    the permission bits do not tell about read-only mounts, full disks or root."""
    kind = non_file_kind(folder)
    if kind is None and os.path.lexists(folder) and not os.path.exists(folder):
        kind = "a symbolic link to nothing"  # mkdir said "File exists": "a file is in the way"
    if kind not in (None, "a folder"):
        raise XRayDeskError(
            f"{option} {printable(folder)}: it is {kind}, not a folder; {consequence}"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".xraydesk-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise XRayDeskError(
            f"{option} {printable(folder)}: cannot write there ({_cause(exc)}); {consequence}"
        ) from exc


def check_file_target(
    path: Path,
    option: str,
    consequence: str = NOTHING_CLASSIFIED,
    inputs: Iterable[Path] = (),
    kept: str = "an input of this command",
) -> None:
    """Raise a clear error when the file ``path`` must not be written
    (``imaging.targets.write_problem``): a folder, a named pipe or a device has that name
    (found only after the run, it cost the whole run, and the rename over it replaced
    /dev/null), or writing would overwrite one of this command's ``inputs`` (or other
    files to keep, ``kept`` saying what they are) or an image (``--csv films/a.png``
    replaced a film by a table)."""
    from xraydesk.imaging.targets import write_problem  # numpy: imported only when it runs

    problem = write_problem(path, inputs, kept, refuse_images=True)
    if problem is not None:
        raise XRayDeskError(f"{option} {printable(path)}: {problem}; {consequence}")


def _cause(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied or read-only"
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return "a file is in the way, not a folder"
    return exc.strerror or str(exc)
