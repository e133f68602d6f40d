"""``imaging.targets.write_problem``: the one check before a save, at both front doors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xraydesk.imaging.targets import write_problem

PNG_HEAD = b"\x89PNG\r\n\x1a\n" + bytes(32)


def test_a_new_file_or_a_plain_existing_one_may_be_written(tmp_path: Path):
    assert write_problem(tmp_path / "new.csv") is None
    (tmp_path / "old.csv").write_text("a,b\n")
    assert write_problem(tmp_path / "old.csv", refuse_images=True) is None


def test_what_is_in_the_way_is_named(tmp_path: Path):
    assert write_problem(tmp_path) == "it is a folder, not a file"
    assert "empty" in write_problem(Path("   "))  # Path("") is already "."
    assert "too long" in write_problem(tmp_path / ("x" * 300))
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert "loop of symbolic links" in write_problem(loop)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_never_written_nor_opened(tmp_path: Path):
    pipe = tmp_path / "x.png"
    os.mkfifo(pipe)
    assert write_problem(pipe, refuse_images=True) == "it is a named pipe, not a file"


def test_kept_files_and_images_are_not_overwritten(tmp_path: Path):
    film = tmp_path / "film.png"
    film.write_bytes(PNG_HEAD)
    link = tmp_path / "link.png"
    link.symlink_to(film)
    # the film on screen, reached by a link too
    assert write_problem(link, [film], "the open image") == "it is the open image, not overwritten"
    # an image that is not kept: the app's dialog asked "replace?", the command line did not
    assert write_problem(film) is None
    assert write_problem(film, refuse_images=True) == "it is an image file, not overwritten"
    # an image by its content, whatever its name
    disguised = tmp_path / "table.csv"
    disguised.write_bytes(PNG_HEAD)
    assert write_problem(disguised, refuse_images=True) == "it is an image file, not overwritten"
