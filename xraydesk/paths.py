"""Where XRayDesk keeps things.

``XRAYDESK_DATA_DIR`` replaces the per-user data folder everywhere (model library,
results database, caches), for tests and portable installs.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "XRayDesk"
DATA_DIR_ENV = "XRAYDESK_DATA_DIR"
_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir() -> Path:
    """The user data folder (created on first use)."""
    override = os.environ.get(DATA_DIR_ENV)
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_models_dir() -> Path:
    """The user's model library: fine-tuned models live here, never beside bundled ones."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


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
