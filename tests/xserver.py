"""A real X server for GUI tests: Xvfb with the openbox window manager on a free display.

The offscreen platform has no window manager: windows are never maximised, panels are
never placed by one, and a layout that passes offscreen can still bury the image on a
real desktop (issue 29). ``XServer`` starts ``Xvfb :N -screen 0 1600x1000x24`` and
``openbox`` on the first free display number and stops both; tests run the GUI in a
subprocess with ``QT_QPA_PLATFORM=xcb`` and ``DISPLAY=:N`` (one QApplication per
process, and the pytest process already has an offscreen one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

SCREEN = (1600, 1000)
START_TIMEOUT_S = 60.0


class XServerMissing(RuntimeError):
    """Xvfb or openbox is not installed."""


class XServer:
    """``with XServer() as x:`` gives ``x.display`` (":N") and ``x.env()`` for a child."""

    def __init__(self, size: tuple[int, int] = SCREEN) -> None:
        self.size = size
        self.display = ""
        self._procs: list[subprocess.Popen] = []

    def __enter__(self) -> XServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        xvfb, openbox = shutil.which("Xvfb"), shutil.which("openbox")
        if xvfb is None or openbox is None:
            missing = " and ".join(n for n, p in (("Xvfb", xvfb), ("openbox", openbox)) if not p)
            raise XServerMissing(f"{missing} not installed (apt install xvfb openbox x11-utils)")
        number = free_display()
        self.display = f":{number}"
        width, height = self.size
        server = subprocess.Popen(
            [xvfb, self.display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(server)
        socket = Path(f"/tmp/.X11-unix/X{number}")
        self._wait(lambda: socket.exists() or server.poll() is not None, "Xvfb")
        if server.poll() is not None:
            raise RuntimeError(f"Xvfb {self.display} exited at start ({server.returncode})")
        wm = subprocess.Popen(
            [openbox, "--sm-disable"],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(wm)
        if shutil.which("xprop"):  # the window manager is up once it owns the check window
            self._wait(self._wm_running, "openbox")
        else:
            time.sleep(1.0)

    def _wm_running(self) -> bool:
        done = subprocess.run(
            ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        return "window id" in done.stdout

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} did not start within {START_TIMEOUT_S:g} s")
            time.sleep(0.05)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a child that draws on this server (xcb, no Wayland)."""
        env = dict(os.environ)
        env.pop("WAYLAND_DISPLAY", None)
        env.update(DISPLAY=self.display, QT_QPA_PLATFORM="xcb", **extra)
        return env

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs.clear()


def free_display(first: int = 90) -> int:
    """The first display number with neither a lock file nor a socket."""
    for number in range(first, first + 400):
        if not (
            Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists()
        ):
            return number
    raise RuntimeError("no free X display number between :90 and :489")
