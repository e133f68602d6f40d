"""Where XRayDesk keeps things.

``XRAYDESK_DATA_DIR`` replaces the per-user data folder everywhere (model library,
results database, caches), for tests and portable installs.
"""

from __future__ import annotations

import errno
from pathlib import Path

import platformdirs

from xraydesk.environment import DATA_DIR, SettingError, folder_setting
from xraydesk.errors import XRayDeskError

APP_NAME = "XRayDesk"
DATA_DIR_ENV = DATA_DIR  # read through xraydesk.environment
_PACKAGE_DIR = Path(__file__).resolve().parent


class DataFolderError(XRayDeskError, OSError):
    """The data folder (or a folder in it) cannot be created: read-only, full, not a
    folder. An XRayDeskError so every front door prints one clear line naming the folder
    and the cause; still an OSError for callers that carry on without the folder."""


def data_dir() -> Path:
    """The user data folder (created on first use)."""
    try:
        override = folder_setting(DATA_DIR)  # this variable alone: logging needs the folder
    except SettingError as exc:  # an OSError too, as callers without the folder expect
        raise DataFolderError(str(exc)) from exc
    path = override or Path(platformdirs.user_data_dir(APP_NAME, False))
    return _created(path)


def user_models_dir() -> Path:
    """The user's model library: fine-tuned models live here, never beside bundled ones."""
    return _created(data_dir() / "models")


def cache_dir() -> Path:
    return _created(data_dir() / "cache")


def _created(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFolderError(data_folder_problem(path, exc)) from exc
    return path


def data_folder_problem(path: Path, exc: OSError) -> str:
    """One line naming the folder, the cause and the way out (XRAYDESK_DATA_DIR)."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        cause = "a file is in the way (not a folder)"
    elif isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        cause = "permission denied: the folder is read-only"
    elif exc.errno == errno.ENOSPC:
        cause = "the disk is full"
    else:
        cause = exc.strerror or str(exc)
    way_out = "free some space or set" if exc.errno == errno.ENOSPC else "set"
    return (
        f"cannot create XRayDesk's data folder {path}: {cause}; {way_out} {DATA_DIR_ENV} "
        "to a writable folder"
    )


def bundled_models_dir() -> Path:
    """models/ of a source checkout, or the copy packed into a wheel or a frozen app."""
    return _first_existing("bundled_models", "models")


def resources_dir() -> Path:
    """resources/ (icons, styles) from a wheel, a frozen app or a source checkout."""
    return _first_existing("resources", "resources")


def _first_existing(packaged_name: str, checkout_name: str) -> Path:
    packaged = _PACKAGE_DIR / packaged_name
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / checkout_name
