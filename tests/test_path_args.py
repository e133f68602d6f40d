"""Hostile path arguments at every command that takes a file or folder (hostile-input
sweep of the command line's paths): an empty or blank path, a name too long for the
system, a path deeper than PATH_MAX and a symbolic link loop are usage errors naming the
argument, before anything loads. Before, ``classify ""`` classified the current folder,
``train ""`` trained on it, ``--csv "  "`` wrote a file named two spaces, and a long name
or a loop ended in an ``OSError``/``RuntimeError`` traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from xraydesk.cli import main

LONG_NAME = "a" * 300 + ".png"
DEEP_PATH = "d/" * 2100 + "a.png"  # 4,205 characters: above Linux's PATH_MAX (4,096)

# each command with X where the hostile path goes ("--" before positionals)
COMMANDS = {
    "classify PATH": ["classify", "--", "X"],
    "classify --csv": ["classify", "--csv", "X", "films"],
    "classify --cam-dir": ["classify", "--cam-dir", "X", "films"],
    "classify --dicom-out": ["classify", "--dicom-out", "X", "films"],
    "classify --model": ["classify", "--model", "X", "films"],
    "monitor --db": ["monitor", "--db", "X"],
    "monitor --baseline": ["monitor", "--baseline", "X"],
    "monitor --save-baseline": ["monitor", "--save-baseline", "X"],
    "validate MODEL": ["validate", "--", "X", "films"],
    "validate FOLDER": ["validate", "--", "model", "X"],
    "validate --labels": ["validate", "--labels", "X", "model", "films"],
    "validate --out": ["validate", "--out", "X", "model", "films"],
    "train DATA": ["train", "--name", "t", "--check", "--", "X"],
    "train --base": ["train", "--name", "t", "--base", "X", "films"],
    "models profile": ["models", "profile", "--", "X"],
    "pacs send": ["pacs", "send", "--", "node", "X"],
    "listen --tls-cert": ["listen", "--tls-cert", "X"],
    "spark classify --model": ["spark", "classify", "--output", "o.parquet", "--model", "X", "in"],
    "spark train-quick --output-dir": ["spark", "train-quick", "--name", "t", "--output-dir", "X"],
}


def _argv(command: str, value: str) -> list[str]:
    return [value if part == "X" else part for part in COMMANDS[command]]


def _usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("value", ["", "  ", "\t"])
def test_an_empty_path_is_refused_as_empty_not_taken_as_here(
    command: str, value: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "films").mkdir()
    line = _usage_error(_argv(command, value), capsys)
    assert "the path is empty" in line
    assert line.startswith("xraydesk ") and ": error: argument " in line


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("value", [LONG_NAME, DEEP_PATH], ids=["long-name", "deep-path"])
def test_a_path_too_long_is_a_usage_error_not_a_traceback(
    command: str, value: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _usage_error(_argv(command, value), capsys)
    assert "the path is too long for this system" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_symbolic_link_loop_is_named_as_such(
    command: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    os.symlink("loop", tmp_path / "loop")
    line = _usage_error(_argv(command, "loop"), capsys)
    assert "'loop': a loop of symbolic links" in line


def test_a_spark_input_is_refused_only_when_empty(tmp_path: Path, monkeypatch, capsys) -> None:
    """A Spark INPUT may be a glob or a URI (s3a://...): only emptiness is checked here."""
    monkeypatch.chdir(tmp_path)
    line = _usage_error(["spark", "classify", "--output", "o.parquet", "--", " "], capsys)
    assert "argument INPUT: ' ': the path is empty" in line
    line = _usage_error(["spark", "classify", "--output", "", "in"], capsys)
    assert "argument --output: the path is empty" in line


def test_a_newline_in_a_path_is_escaped_in_the_message(tmp_path, test_model_path, capsys):
    """The message stays one line: the newline in the name shows as \\n."""
    name = tmp_path / "x\ny\tz"
    model = str(test_model_path)
    assert main(["validate", "--no-pdf", "-o", str(tmp_path / "r"), "--", model, str(name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path}/x\\ny\\tz" in err


def test_a_name_that_is_not_utf8_is_printed_escaped(tmp_path, test_model_path, capsys):
    name = tmp_path / os.fsdecode(b"\xff-labels.csv")
    args = ["validate", "--labels", str(name), str(test_model_path), str(tmp_path)]
    assert main([*args, "--no-pdf", "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "\\xff-labels.csv" in err and "\\udcff" not in err and err.count("\n") == 1


@pytest.mark.parametrize("out", [".", "/"])
def test_validate_out_without_a_name_is_refused_not_a_traceback(out: str, tmp_path, capsys):
    """``-o .`` ended in ValueError ('PosixPath('.') has an empty name')."""
    (tmp_path / "films").mkdir()
    assert main(["validate", "-o", out, "model", str(tmp_path / "films")]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: give a file name" in err and "Traceback" not in err


def test_pacs_send_refuses_a_named_pipe_before_reading_any_file(tmp_path: Path) -> None:
    """``pacs send NODE fifo`` waited forever in the DICOM reader."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "XRAYDESK_DATA_DIR": str(tmp_path)}
    xraydesk = [sys.executable, "-m", "xraydesk", "pacs"]
    subprocess.run([*xraydesk, "add", "n", "AE", "127.0.0.1", "1"], env=env, check=True)
    os.mkfifo(tmp_path / "fifo")
    done = subprocess.run(
        [*xraydesk, "send", "n", str(tmp_path / "fifo")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path / 'fifo'}: not a regular file (a named pipe): not read" in done.stderr
