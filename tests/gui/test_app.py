"""The desktop app's own command line (``xraydesk [PATH]``): a PATH that can name nothing
(empty, white space, too long, a symbolic link loop) is a usage error with the message
the commands give (``xraydesk.path_args``), before any window opens. ``xraydesk ""`` started
the app as if no path were given."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from xraydesk.gui.app import main
from xraydesk.path_args import path_text


def _cli_message(text: str) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        path_text(text)
    return str(raised.value)


@pytest.mark.parametrize("kind", ["empty", "blank", "too long", "loop"])
def test_a_path_that_names_nothing_is_a_usage_error(kind: str, tmp_path: Path, capsys) -> None:
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop.name)
    text = {"empty": "", "blank": "  ", "too long": "x" * 300 + ".png", "loop": str(loop)}[kind]
    assert main([text]) == 2  # argparse's usage status; no window was made
    err = capsys.readouterr().err
    assert err.startswith("usage: xraydesk")
    assert err.endswith(f"xraydesk: error: argument path: {_cli_message(text)}\n")


def test_screenshot_of_an_empty_path_is_refused_the_same_way(tmp_path: Path, capsys) -> None:
    assert main(["--screenshot", str(tmp_path / "out.png"), ""]) == 2
    assert "argument path: the path is empty" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("kind", ["pipe", "folder", "the image", "too long"])
def test_screenshot_to_a_place_it_must_not_write_is_refused(
    kind: str, tmp_path: Path, capsys
) -> None:
    """A pipe blocked the save for good, and OUT naming PATH replaced the film by a
    picture of the window; refused before any window is made."""
    import os

    from tests.hostile_files import small_png

    film = tmp_path / "film.png"
    film.write_bytes(small_png())
    out = {
        "pipe": tmp_path / "pipe.png",
        "folder": tmp_path / "shots",
        "the image": film,
        "too long": tmp_path / ("s" * 300 + ".png"),
    }[kind]
    if kind == "pipe":
        os.mkfifo(out)
    elif kind == "folder":
        out.mkdir()
    cause = {"pipe": "named pipe", "folder": "folder", "the image": "image", "too long": "long"}
    assert main(["--screenshot", str(out), str(film)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"xraydesk: {out}: cannot write the screenshot there"), err
    assert cause[kind] in err and "Traceback" not in err, err
    assert film.read_bytes() == small_png()
