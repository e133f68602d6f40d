"""Before Qt starts: are the system libraries its xcb platform plugin needs installed?

On a stock Linux desktop PySide6's wheel brings Qt but not the X11 helper libraries its
``libqxcb.so`` plugin links against (libxcb-icccm4, libxcb-keysyms1, libxcb-cursor0...).
Qt then aborts the process (exit 134) with a message naming the wrong package. This
module asks ``ldd`` which of the plugin's libraries cannot be found, and the app prints
them with the command that installs them, and exits 1, before any Qt import. It imports
nothing from Qt and never loads the plugin itself.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PLUGIN_NAME = "libqxcb.so"
LDD_TIMEOUT_S = 20.0

# soname -> package on (Debian/Ubuntu, Fedora, Arch). Libraries not listed are named
# with the command that finds their package.
PACKAGES: dict[str, tuple[str, str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image", "xcb-util-image"),
    "libxcb-render-util.so.0": (
        "libxcb-render-util0",
        "xcb-util-renderutil",
        "xcb-util-renderutil",
    ),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util", "xcb-util"),
    "libxcb.so.1": ("libxcb1", "libxcb", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11"),
    "libX11.so.6": ("libx11-6", "libX11", "libx11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb", "libx11"),
    "libSM.so.6": ("libsm6", "libSM", "libsm"),
    "libICE.so.6": ("libice6", "libICE", "libice"),
    "libGL.so.1": ("libgl1", "libglvnd-glx", "libglvnd"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl", "libglvnd"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl", "libglvnd"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx", "libglvnd"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype", "freetype2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs", "dbus"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2", "glib2"),
}
# (distribution family, install command, how to find the package of an unknown library)
DISTRIBUTIONS = (
    ("Debian/Ubuntu", "sudo apt install", "apt-file search {lib}"),
    ("Fedora", "sudo dnf install", "dnf provides '*/{lib}'"),
    ("Arch", "sudo pacman -S --needed", "pacman -F {lib}"),
)


@dataclass(frozen=True)
class PreflightProblem:
    """The platform plugin cannot load: which file, and which libraries are missing."""

    plugin: Path
    missing: tuple[str, ...]

    def message(self) -> str:
        """What to tell the user: the libraries, then one install line per distribution."""
        lines = [
            "xraydesk: the desktop app cannot start: Qt's X11 (xcb) platform plugin",
            f"  {self.plugin}",
            "needs system libraries that are not installed:",
            *(f"  {lib}" for lib in self.missing),
            "Install them with the command for your distribution:",
        ]
        for column, (family, install, _) in enumerate(DISTRIBUTIONS):
            known = [PACKAGES[lib][column] for lib in self.missing if lib in PACKAGES]
            if known:
                lines.append(f"  {family + ':':15} {install} {' '.join(dict.fromkeys(known))}")
        unknown = [lib for lib in self.missing if lib not in PACKAGES]
        for lib in unknown:
            finders = "; ".join(find.format(lib=lib) for _, _, find in DISTRIBUTIONS)
            lines.append(f"  {lib}: find its package with {finders}")
        lines.append(
            "The command-line tools (xraydesk classify, train, models) work without them; "
            "QT_QPA_PLATFORM=offscreen runs the app without a display (screenshots)."
        )
        return "\n".join(lines)


def platform_will_be_xcb(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> bool:
    """Whether Qt will try the xcb plugin: on Linux, QT_QPA_PLATFORM naming xcb first, or
    unset outside a Wayland session (Qt's own default)."""
    environ = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return False
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        first = requested.split(";")[0].split(":")[0].strip().lower()
        return first == "xcb"
    wayland = environ.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    return not (wayland and environ.get("WAYLAND_DISPLAY"))


def find_xcb_plugin(environ: Mapping[str, str] | None = None) -> Path | None:
    """The libqxcb.so Qt would load: QT_QPA_PLATFORM_PLUGIN_PATH, then QT_PLUGIN_PATH's
    platforms/, then PySide6's own (found without importing PySide6)."""
    environ = os.environ if environ is None else environ
    folders = [Path(p) for p in environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep)]
    folders += [
        Path(p) / "platforms" for p in environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p
    ]
    spec = importlib.util.find_spec("PySide6")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "Qt" / "plugins" / "platforms")
    for folder in folders:
        if str(folder) not in ("", ".") and (folder / PLUGIN_NAME).is_file():
            return folder / PLUGIN_NAME
    return None


def missing_libraries(library: Path, ldd: str | None = None) -> tuple[str, ...] | None:
    """Sonames ``ldd`` reports as "not found" for ``library`` (its dependencies'
    dependencies included), in order; None when ldd is not there or fails (unknown)."""
    ldd = ldd or shutil.which("ldd")
    if ldd is None:
        return None
    try:
        done = subprocess.run(
            [ldd, str(library)],
            capture_output=True,
            text=True,
            timeout=LDD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_ldd(done.stdout) if done.stdout else None


def parse_ldd(output: str) -> tuple[str, ...]:
    """The "NAME => not found" lines of ldd's output, each name once."""
    found: dict[str, None] = {}
    for line in output.splitlines():
        name, arrow, where = line.strip().partition("=>")
        if arrow and where.strip() == "not found":
            found[name.strip()] = None
    return tuple(found)


def check(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> PreflightProblem | None:
    """The problem that would make Qt abort at start-up, or None (nothing to check, the
    check could not run, or every library is there: then Qt speaks for itself)."""
    if not platform_will_be_xcb(environ, platform):
        return None
    plugin = find_xcb_plugin(environ)
    if plugin is None:
        return None
    missing = missing_libraries(plugin)
    return PreflightProblem(plugin, missing) if missing else None


def will_run_offscreen(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> bool:
    """``xraydesk --screenshot`` without a display runs offscreen (see gui.app): no xcb."""
    environ = os.environ if environ is None else environ
    display = environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
    screenshot = any(a == "--screenshot" or a.startswith("--screenshot=") for a in argv)
    return screenshot and not display and not environ.get("QT_QPA_PLATFORM")


# platforms that draw without a display server (scripted screenshots, tests, remote)
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def no_display_message(
    argv: Sequence[str], environ: Mapping[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why the desktop app cannot open a window here, or None when it can (or may).

    Without DISPLAY or WAYLAND_DISPLAY, Qt aborts (exit 134) with a message about the
    xcb cursor library, which sends people installing packages they have. On Linux this
    says plainly that there is no display, and what works without one.
    """
    environ = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux") or will_run_offscreen(argv, environ):
        return None
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    first = requested.split(";")[0].split(":")[0].strip().lower()
    if first in HEADLESS_PLATFORMS:
        return None
    x11, wayland = environ.get("DISPLAY"), environ.get("WAYLAND_DISPLAY")
    if (first == "xcb" and x11) or (first.startswith("wayland") and wayland):
        return None
    if not first and (x11 or wayland):
        return None
    wanted = "DISPLAY" if first == "xcb" else "WAYLAND_DISPLAY" if first else ""
    which = f"{wanted} is not set" if wanted else "neither DISPLAY nor WAYLAND_DISPLAY is set"
    return "\n".join(
        (
            f"xraydesk: no display: the desktop app needs a graphical session ({which}).",
            "Start it from a desktop session, or over SSH with X forwarding (ssh -X).",
            "Without a display: the command-line tools work (xraydesk --help lists them), and "
            "QT_QPA_PLATFORM=offscreen xraydesk --screenshot OUT.png PATH saves a picture "
            "of the window.",
        )
    )
