"""Received DICOM files on disk: ``<data folder>/dicom/<Study>/<Series>/<SOP Instance>.dcm``.

Why so strict: the files hold patient data, so folders are 0700 and files 0600 (only the
user running XRayDesk reads them), and the UIDs that become path components are checked
against the DICOM UID syntax (digits and dots, at most 64 characters) so a crafted object
can never write outside the store (``../``, absolute paths, odd characters).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

from xraydesk import paths
from xraydesk.errors import XRayDeskError

STORE_DIR = "dicom"
DIR_MODE = 0o700
FILE_MODE = 0o600


class InvalidUID(XRayDeskError):
    """A UID that is not a DICOM UID: the object is refused, never stored."""


def check_uid(value: object, what: str) -> str:
    text = str(value or "").strip().rstrip("\x00")
    # Leading zeros are not valid DICOM but old devices write them; the shape is what
    # keeps paths safe, so accept digits-and-dots and refuse everything else.
    if not text or len(text) > 64 or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", text):
        raise InvalidUID(f"the {what} is not a valid DICOM UID")
    return text


def store_root() -> Path:
    root = paths.data_dir() / STORE_DIR
    make_private_dirs(root)
    return root


def instance_path(root: Path, study: str, series: str, sop: str) -> Path:
    return (
        root
        / check_uid(study, "Study Instance UID")
        / check_uid(series, "Series Instance UID")
        / f"{check_uid(sop, 'SOP Instance UID')}.dcm"
    )


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and missing parents as 0700; an existing store folder is tightened."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another association made it meanwhile
            folder.mkdir(mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)  # mkdir's mode is masked by the umask
    if path.is_dir() and (path.stat().st_mode & 0o777) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file, complete or not at all (temp + rename).

    The temporary file is created 0600 from the start (O_EXCL), so the bytes are never
    readable by others, not even for a moment.
    """
    make_private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident():x}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
