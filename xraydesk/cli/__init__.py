"""The ``xraydesk`` command: a thin front door over the engine.

``xraydesk SUBCOMMAND ...`` runs a command-line tool; ``xraydesk [PATH]`` (no
subcommand) opens the desktop app.

Start-up is kept short: only the subcommand that runs is imported, and each
subcommand module imports its heavy libraries (torch, the engines) inside ``run``, so
``xraydesk --version`` and ``xraydesk models`` answer without importing torch or Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import textwrap
import threading
from collections.abc import Iterable, Iterator, Sequence

from xraydesk import __version__, logs, qt_preflight
from xraydesk.errors import XRayDeskError
from xraydesk.printable import printable

# subcommand -> module in xraydesk.cli with register(subparsers) and run(args) -> int
SUBCOMMANDS = {
    "classify": "xraydesk.cli.classify",
    "listen": "xraydesk.cli.listen",
    "models": "xraydesk.cli.models",
    "monitor": "xraydesk.cli.monitor",
    "pacs": "xraydesk.cli.pacs",
    "self-test": "xraydesk.cli.selftest",
    "spark": "xraydesk.cli.spark",
    "train": "xraydesk.cli.train",
    "validate": "xraydesk.cli.validate",
}

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser with these subcommands registered (None: all of them).

    Registering a subcommand imports its module; ``main`` registers only the one it runs.
    """
    parser = argparse.ArgumentParser(
        prog="xraydesk",
        usage="xraydesk [PATH] | xraydesk COMMAND [options]",
        description=textwrap.fill(
            "XRayDesk: a local assistant for chest radiographs. Without a subcommand it opens "
            "the desktop app: `xraydesk PATH` opens an image file (PNG, JPEG, TIFF, BMP or "
            "DICOM) in the viewer, or the first image of a folder; `xraydesk` alone opens an "
            "empty viewer. Everything runs on this machine; no image leaves it.",
            width=80,
        ),
        epilog=(
            "examples:\n"
            "  xraydesk chest.dcm                open an image in the viewer\n"
            "  xraydesk classify FOLDER          classify every image of a folder\n"
            "  xraydesk COMMAND --help           the options of one command\n"
            "  xraydesk self-test                check this installation"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"XRayDesk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", prog="xraydesk")
    for name in SUBCOMMANDS if commands is None else commands:
        importlib.import_module(SUBCOMMANDS[name]).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        return _run_gui(argv)
    # a subcommand needs only its own module; --help lists them all; --version none
    commands = [argv[0]] if argv[0] in SUBCOMMANDS else [] if argv[0] == "--version" else None
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    logs.setup(f"xraydesk {args.command}")
    try:
        with ctrl_c_interrupts():
            return int(args.run(args))
    except XRayDeskError as exc:
        # one line whatever the message quotes: a path with a newline or a byte that is
        # not UTF-8 must neither break the line nor fail the printing
        print(f"xraydesk: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("xraydesk: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def ctrl_c_interrupts() -> Iterator[None]:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt while a command runs, however the process
    was started. A shell without job control starts background commands with SIGINT
    ignored, and Python then keeps it ignored: training could not be stopped cleanly and
    classify not interrupted. The previous handler is put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (main() called from a worker)
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(
            signal.SIGINT, previous if previous is not None else signal.default_int_handler
        )


def _run_gui(argv: list[str]) -> int:
    # Before any PySide6 import: no display, or a missing X11 library, would make Qt abort
    # (exit 134) with a misleading message.
    if "-h" not in argv and "--help" not in argv and not qt_preflight.will_run_offscreen(argv):
        problem = qt_preflight.check()
        if problem is not None:
            print(problem.message(), file=sys.stderr)
            return EXIT_FAILED
        no_display = qt_preflight.no_display_message(argv)
        if no_display is not None:
            print(no_display, file=sys.stderr)
            return EXIT_FAILED
    try:
        gui = importlib.import_module("xraydesk.gui.app")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("xraydesk.gui"):
            build_parser().print_help()
            return EXIT_OK if not argv else EXIT_USAGE
        raise
    return int(gui.main(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
