"""Persistent preferences, in an ini file in the XRayDesk data folder.

An ini file at ``paths.data_dir()/settings.ini`` rather than the platform's native
store (registry, plist): it follows ``XRAYDESK_DATA_DIR``, so tests and portable
installs never touch a user's real settings, and it is readable when supporting users.
Nothing identifying is stored: recent files are paths the user opened, which stay on
this machine like the files themselves.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from xraydesk import paths
from xraydesk.explain.methods import known_method
from xraydesk.viewer.viewstate import DEFAULT_OPACITY, clamp_opacity

MAX_RECENT = 10
SETTINGS_FILE = "settings.ini"


class AppSettings:
    def __init__(self, file: Path | None = None) -> None:
        self.file = file or paths.data_dir() / SETTINGS_FILE
        self._qs = QSettings(str(self.file), QSettings.Format.IniFormat)

    def sync(self) -> None:
        self._qs.sync()

    # -- typed accessors ------------------------------------------------------------------
    def _str(self, key: str, default: str = "") -> str:
        value = self._qs.value(key, default)
        return str(value) if value is not None else default

    def _bool(self, key: str, default: bool) -> bool:
        value = self._qs.value(key, default)
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)

    @property
    def last_folder(self) -> str:
        return self._str("files/last_folder")

    @last_folder.setter
    def last_folder(self, folder: str) -> None:
        self._qs.setValue("files/last_folder", folder)

    @property
    def recent_files(self) -> list[str]:
        value = self._qs.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone entry as a plain string
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent_file(self, path: Path) -> list[str]:
        entry = str(path)
        recent = [entry] + [p for p in self.recent_files if p != entry]
        self._qs.setValue("files/recent", recent[:MAX_RECENT])
        return recent[:MAX_RECENT]

    def clear_recent_files(self) -> None:
        self._qs.setValue("files/recent", [])

    @property
    def overlay_opacity(self) -> float:
        try:
            return clamp_opacity(self._qs.value("view/overlay_opacity", DEFAULT_OPACITY))
        except (TypeError, ValueError):
            return DEFAULT_OPACITY

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self._qs.setValue("view/overlay_opacity", float(value))

    @property
    def overlay_visible(self) -> bool:
        return self._bool("view/overlay_visible", True)

    @overlay_visible.setter
    def overlay_visible(self, value: bool) -> None:
        self._qs.setValue("view/overlay_visible", bool(value))

    @property
    def report_folder(self) -> str:
        """Where PDF reports are saved ("" until the user has saved one)."""
        return self._str("reports/folder")

    @report_folder.setter
    def report_folder(self, folder: str) -> None:
        self._qs.setValue("reports/folder", folder)

    @property
    def report_identifiers(self) -> bool:
        """Reports name the patient (name, ID, birth date, accession); on by default."""
        return self._bool("reports/identifiers", True)

    @report_identifiers.setter
    def report_identifiers(self, on: bool) -> None:
        self._qs.setValue("reports/identifiers", bool(on))

    @property
    def heat_map_method(self) -> str:
        """The heat-map method (a key of ``explain.METHODS``); CAM when unset or unknown."""
        return known_method(self._qs.value("view/heat_map_method"))

    @heat_map_method.setter
    def heat_map_method(self, value: str) -> None:
        self._qs.setValue("view/heat_map_method", value)

    @property
    def device(self) -> str:
        return self._str("model/device", "auto") or "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._qs.setValue("model/device", value)

    @property
    def model(self) -> str:
        """The last chosen model: a card path (a name for models given by name)."""
        return self._str("model/model")

    @model.setter
    def model(self, value: str) -> None:
        self._qs.setValue("model/model", value)

    @property
    def geometry(self) -> QByteArray | None:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._qs.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._qs.setValue("window/state", value)

    @property
    def notice_acknowledged(self) -> bool:
        return self._bool("notice/acknowledged", False)

    @notice_acknowledged.setter
    def notice_acknowledged(self, value: bool) -> None:
        self._qs.setValue("notice/acknowledged", bool(value))
