"""``xraydesk [PATH]`` and ``xraydesk --screenshot OUT.png PATH``: the desktop app's front door.

Start-up: a small start window is on screen within a fraction of a second,
while torch and the analysis engine import on a worker thread; then the main window
replaces it, and the model loads in the background (``model_choice.ModelLoader``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QEventLoop, Qt, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QProgressBar, QVBoxLayout, QWidget

from xraydesk import __version__, logs, paths
from xraydesk.errors import XRayDeskError
from xraydesk.gui.save_target import check_save_target
from xraydesk.gui.worker import Job, JobThread
from xraydesk.model import library
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.optional import installed
from xraydesk.path_args import path_text
from xraydesk.printable import printable

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SCREENSHOT_SIZE = (1440, 900)  # at least 1280 x 800, the documented minimum
SCREENSHOT_TIMEOUT_S = 600.0
# Imported on a worker thread while the start window is shown: the Qt-free modules the
# main window needs that take a while. Qt modules are imported later, on the GUI thread.
# Not torch (2.5 s, 400 MB): on a CPU the models run on an exported runtime, and torch is
# imported on a worker only where something needs it (Grad-CAM, training, a GPU).
ENGINE_MODULES = (
    "xraydesk.classifier",
    "xraydesk.classifier.cache",
    "xraydesk.explain",
    "xraydesk.trust.orient",
    "xraydesk.batch.run",
    "xraydesk.trainer.training",
    "xraydesk.dicomnet.node",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xraydesk",
        description="XRayDesk viewer: open a chest radiograph, see class probabilities and "
        "the Grad-CAM heat map. XRayDesk assists and does not diagnose.",
    )
    parser.add_argument(
        "path", nargs="?", type=path_text, help="an image file, or a folder (opens its first image)"
    )
    parser.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="open PATH, wait for the probabilities and the heat map, save the window, exit",
    )
    parser.add_argument("--model", help="model name from the library, or a model card (.json)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, help="where the model runs")
    parser.add_argument(
        "--timeout",
        type=float,
        default=SCREENSHOT_TIMEOUT_S,
        help="--screenshot gives up after this many seconds (default %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the viewer; returns the exit status (never calls sys.exit)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    logs.setup("desktop app")
    if args.screenshot and not args.path:
        print("xraydesk: --screenshot needs an image PATH", file=sys.stderr)
        return EXIT_USAGE
    if args.screenshot:  # a pipe blocked the save for good; the film became its picture
        try:
            check_save_target(Path(args.screenshot), "the screenshot", keep=(Path(args.path),))
        except XRayDeskError as exc:
            print(f"xraydesk: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.screenshot and not _has_display():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # scripted docs, CI
    quiet_offscreen_notices()
    app = _application()
    start = None
    if not args.screenshot:
        start = StartWindow()
        start.show()
        if not import_engine(start):
            return EXIT_OK  # the start window was closed: the user changed their mind
    from xraydesk.gui.main_window import MainWindow  # after QApplication: fonts, styles
    from xraydesk.gui.tools import install_tools

    # torch, Qt and numpy leave ~half a million long-lived objects; freezing them keeps
    # the cyclic garbage collector from pausing every thread for a whole sweep later
    gc.collect()
    gc.freeze()

    if args.screenshot:
        return _screenshot(app, args, MainWindow)
    window = MainWindow(model=args.model, device=args.device)
    install_tools(window)
    previous_hook = sys.excepthook
    sys.excepthook = _make_excepthook(window)
    try:
        show_main_window(window)
        if start is not None:
            start.replaced()
            start.deleteLater()
        window.show_first_start_notice()
        if args.path:
            window.open_path(args.path)
        return int(app.exec())
    finally:
        sys.excepthook = previous_hook
        window.close()  # no-op if the user closed it; waits for the workers
        window.deleteLater()


def show_main_window(window: QMainWindow) -> None:
    """Maximised on the first launch, so the image gets the screen; afterwards
    as the user left it (the restored geometry says whether it was maximised)."""
    settings = getattr(window, "settings", None)
    if settings is not None and settings.geometry is None:
        window.showMaximized()
    else:
        window.show()


class StartWindow(QMainWindow):
    """What the user sees while torch and the engine import (a few seconds on a small
    CPU): the app has started and is getting ready; closing it quits."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("startWindow")
        self.setWindowTitle("XRayDesk")
        body = QWidget()
        layout = QVBoxLayout(body)
        title = QLabel("XRayDesk is starting…")
        title.setObjectName("startTitle")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        title.setFont(font)
        layout.addWidget(title)
        layout.addWidget(QLabel("Loading the analysis engine. The window opens in a moment."))
        busy = QProgressBar()
        busy.setRange(0, 0)  # no known end: a moving bar says it is working
        busy.setTextVisible(False)
        layout.addWidget(busy)
        self.setCentralWidget(body)
        self.resize(440, 140)
        self.closed_by_user = False
        self._replaced = False

    def closeEvent(self, event) -> None:
        self.closed_by_user = not self._replaced
        super().closeEvent(event)

    def replaced(self) -> None:
        """The main window is up: closing now is not the user's doing."""
        self._replaced = True
        self.close()


class _ImportJob(Job):
    """Imports the engine's modules; a failing one is left to fail again, with its
    traceback, where the main window imports it on the GUI thread."""

    def __init__(self, modules: Sequence[str]) -> None:
        super().__init__()
        self.modules = tuple(modules)

    def work(self) -> None:
        try:
            for name in self.modules:
                if "." not in name and not installed(name):  # torch, in the light build
                    continue
                importlib.import_module(name)
        except Exception:  # raised again on the GUI thread, see above
            log.debug("background import failed", exc_info=True)


def import_engine(start: StartWindow, modules: Sequence[str] = ENGINE_MODULES) -> bool:
    """Import ``modules`` on a worker thread while the event loop keeps ``start`` painted
    and answering. False when the user closed the start window meanwhile."""
    worker = JobThread(_ImportJob(modules))
    worker.setObjectName("xraydesk-import")
    worker.start()
    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: (worker.isFinished() or start.closed_by_user) and loop.quit())
    poll.start(15)
    if not worker.isFinished():
        loop.exec()
    poll.stop()
    worker.wait()  # also when closed: never leave an import half-done behind
    return not start.closed_by_user


def quiet_offscreen_notices() -> None:
    """Without a display, Qt's offscreen platform warns about window-manager hints it
    cannot pass on; those lines would only confuse people reading scripted output."""
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        qInstallMessageHandler(_quiet_offscreen_messages)


def _quiet_offscreen_messages(mode: QtMsgType, context, message: str) -> None:
    """Drop the offscreen platform's harmless notices; print everything else."""
    if "propagateSizeHints" in message:
        return
    print(message, file=sys.stderr)


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def _application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        QApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication([sys.argv[0] if sys.argv else "xraydesk"])
    assert isinstance(app, QApplication)
    app.setApplicationName("XRayDesk")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("XRayDesk")
    apply_theme(app)
    return app


def apply_theme(app: QApplication) -> None:
    """Dark theme for reading rooms: dim surroundings so the radiograph stands out."""
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: QColor(30, 33, 38),
        QPalette.ColorRole.WindowText: QColor(220, 224, 230),
        QPalette.ColorRole.Base: QColor(22, 24, 28),
        QPalette.ColorRole.AlternateBase: QColor(36, 40, 46),
        QPalette.ColorRole.ToolTipBase: QColor(44, 48, 56),
        QPalette.ColorRole.ToolTipText: QColor(230, 232, 236),
        QPalette.ColorRole.Text: QColor(220, 224, 230),
        QPalette.ColorRole.Button: QColor(44, 48, 56),
        QPalette.ColorRole.ButtonText: QColor(220, 224, 230),
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Highlight: QColor(58, 130, 210),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 255),
        QPalette.ColorRole.PlaceholderText: QColor(130, 136, 146),
    }
    for role, colour in colours.items():
        palette.setColor(role, colour)
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 115, 124))
    app.setPalette(palette)
    font = QFont(app.font())
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
    app.setFont(font)
    style = paths.resources_dir() / "style" / "dark.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))


def _make_excepthook(window):
    """Show unexpected errors in the window instead of letting them end the app."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        # the traceback goes to the log file; identifying DICOM fields are never in it
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        with contextlib.suppress(Exception):  # the window itself is broken: the log has it
            window.show_unexpected_error(exc)

    return hook


def _screenshot(app: QApplication, args: argparse.Namespace, window_class) -> int:
    out = Path(args.screenshot)
    path = Path(args.path)
    try:
        card = library.resolve_model(args.model)
    except XRayDeskError as exc:
        print(f"xraydesk: {exc}", file=sys.stderr)
        return EXIT_FAILED
    from xraydesk.gui.settings import AppSettings  # imports imaging: not before the start window

    # throwaway settings: the picture does not depend on, nor change, the user's preferences
    scratch = tempfile.TemporaryDirectory(prefix="xraydesk-screenshot-")
    window = window_class(
        model=card.path,
        device=args.device,
        settings=AppSettings(Path(scratch.name) / "settings.ini"),
    )
    window.resize(*SCREENSHOT_SIZE)
    outcome: dict[str, str] = {}
    loop = QEventLoop()

    def finish(key: str, value: str) -> None:
        outcome.setdefault(key, value)
        loop.quit()

    def finished() -> None:
        """The analysis ended: grab now, so the picture shows the window as the user sees
        it afterwards (grabbing at the heat map's arrival caught "Computing the heat map…"
        still in the image's corner and the status bar)."""
        if "ok" not in outcome:
            outcome.setdefault("error", f"{path}: no heat map was produced")
        loop.quit()

    window.overlay_shown.connect(lambda _cam: outcome.setdefault("ok", ""))
    window.error_shown.connect(lambda message: finish("error", message))
    window.analysis_finished.connect(lambda: QTimer.singleShot(0, finished))
    previous_hook = sys.excepthook
    sys.excepthook = lambda kind, exc, tb: finish(
        "error", f"unexpected error: {kind.__name__}: {exc}"
    )
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: finish("error", f"{path}: timed out after {args.timeout:g} s"))
    try:
        window.show()
        if window.open_path(path):
            timer.start(int(args.timeout * 1000))
            loop.exec()
        else:
            outcome.setdefault("error", window.banner.text or f"{path}: cannot open")
        if "error" in outcome and "ok" not in outcome:
            print(f"xraydesk: {outcome['error']}", file=sys.stderr)
            return EXIT_FAILED
        app.processEvents()  # let the last paint land before grabbing
        pixmap = window.grab()
        out.parent.mkdir(parents=True, exist_ok=True)
        if not pixmap.save(str(out), "PNG"):
            print(f"xraydesk: {printable(out)}: cannot write the screenshot", file=sys.stderr)
            return EXIT_FAILED
        print(f"{printable(out)}: {pixmap.width()} x {pixmap.height()} screenshot saved")
        return EXIT_OK
    finally:
        timer.stop()
        sys.excepthook = previous_hook
        window.close()
        window.deleteLater()
        app.processEvents()
        scratch.cleanup()
