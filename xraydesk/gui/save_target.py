"""Where a save action of the desktop app may write, checked before anything is written.

Why: File > Export image given a named pipe blocked the window for good (Qt opened it and
waited for a reader), and given the path of the image on screen it replaced the film with
a screenshot of it. The check is the command line's (``imaging.targets.write_problem``);
this names what the app keeps and words the refusal for a save.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xraydesk.errors import XRayDeskError
from xraydesk.imaging.targets import write_problem
from xraydesk.printable import printable


def check_save_target(
    path: Path,
    what: str,
    keep: Iterable[Path | None] = (),
    kept: str = "the open image",
    document: bool = False,
) -> None:
    """Raise ``XRayDeskError`` naming ``path`` and the cause when ``what`` ("the image",
    "the report") must not be written there: a path that names nothing, a folder, a
    named pipe or a device, or one of the files in ``keep`` (``kept`` says what they are:
    the image on screen, the images of a batch run). A ``document`` (a table, a report:
    anything but an image) is never written over an existing image file either, as on
    the command line: the dialog's "replace?" does not say that the file it would
    replace is a film, and a CSV saved as another folder's ``a.png`` lost that film."""
    problem = write_problem(path, keep, kept, refuse_images=document)
    if problem is not None:
        raise XRayDeskError(f"{printable(path)}: cannot write {what} there ({problem}).")
