"""argparse types for the arguments that name a file or folder: a path that can name
nothing (``files.path_problem``: empty, too long, a symbolic link loop) is a usage error
naming the argument, before anything loads.

Why: ``classify ""`` classified the current folder, ``--csv "  "`` wrote a file named
two spaces, and a 300-character name ended in an ``OSError`` traceback from
``Path.is_dir`` in every command that took it. Here, below both front doors, so the
desktop app's PATH and the commands' arguments give one message.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xraydesk.files import path_problem
from xraydesk.printable import printable


def path_text(text: str) -> str:
    """A local file or folder (or a model's NAME|PATH), kept as the text given."""
    problem = path_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(_message(text, problem))
    return text


def path_arg(text: str) -> Path:
    """A local file or folder, as a ``Path``."""
    return Path(path_text(text))


def location_text(text: str) -> str:
    """A place Spark reads or writes (a path, a glob or a URI such as ``s3a://``):
    only an empty one is refused, as the rest is not a local name to check."""
    if not text.strip():
        raise argparse.ArgumentTypeError(_message(text, "the path is empty"))
    return text


def _message(text: str, problem: str) -> str:
    return problem if not text else f"'{printable(text)}': {problem}"
