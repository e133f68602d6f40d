"""``xraydesk.files``: the checks every layer shares on a path before it is used
(hostile-input sweep of the command line's paths)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from xraydesk.files import SideFile, path_problem, write_atomic


@pytest.mark.parametrize("text", ["", " ", "\t", "\n"])
def test_an_empty_path_is_a_problem_not_the_current_folder(text: str) -> None:
    problem = path_problem(text)
    assert problem is not None and problem.startswith("the path is empty")


def test_a_name_or_path_too_long_is_named(tmp_path: Path) -> None:
    assert "too long" in (path_problem(tmp_path / ("a" * 300)) or "")
    assert "too long" in (path_problem("d/" * 2100 + "a.png") or "")


def test_a_symbolic_link_loop_is_named(tmp_path: Path) -> None:
    os.symlink("loop", tmp_path / "loop")
    assert "loop of symbolic links" in (path_problem(tmp_path / "loop") or "")
    assert "loop of symbolic links" in (path_problem(tmp_path / "loop" / "x.csv") or "")


def test_ordinary_paths_have_no_problem(tmp_path: Path) -> None:
    os.symlink("nothing-here", tmp_path / "dangling")
    for path in (tmp_path, tmp_path / "missing" / "out.csv", tmp_path / "dangling", " a "):
        assert path_problem(path) is None


@pytest.mark.parametrize("writer", ["side-file", "atomic"])
def test_a_named_pipe_is_never_replaced_by_a_written_file(writer: str, tmp_path: Path) -> None:
    """The rename over the target replaced whatever had its name (a pipe, /dev/null)."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(OSError, match="it is a named pipe, not a file"):
        if writer == "side-file":
            SideFile(pipe)
        else:
            write_atomic(pipe, "text")
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no side file left


def test_a_folder_target_is_still_refused_as_a_folder(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, "text")


def test_folder_problem_says_what_stands_where_a_folder_should(tmp_path):
    from xraydesk.files import folder_problem

    assert folder_problem(tmp_path) is None
    (tmp_path / "f.png").write_bytes(b"x")
    assert folder_problem(tmp_path / "f.png") == "not a folder (a file)"
    assert folder_problem(tmp_path / "gone") == "not found"
    assert "too long" in folder_problem(tmp_path / ("x" * 300))
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert "loop of symbolic links" in folder_problem(loop)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        assert folder_problem(tmp_path / "pipe") == "it is a named pipe, not a folder"
