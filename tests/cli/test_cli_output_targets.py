"""Output targets that cannot be written are refused before anything is classified, at
every option that writes: found by a hostile-input sweep. ``--csv`` naming a folder ran
the whole folder and then failed ("Is a directory"), and ``--dicom-out`` naming a file
classified everything and then said "SR and heat map of 0 image(s)" without a cause.
A second sweep found targets that must never be written: a named pipe or a device (the
rename replaced /dev/null), an input film, and the database ``monitor`` reads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from tests.batch_helpers import write_png
from tests.cli_child import run_cli
from tests.dicom_factory import make_dicom
from xraydesk.cli import main
from xraydesk.files import SideFile


def test_csv_naming_a_folder_fails_before_classifying(tmp_path, test_model_path, capsys):
    films = tmp_path / "films"
    write_png(films / "a.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["classify", str(films), "--model", str(test_model_path), "--csv", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert f"--csv {out}: it is a folder, not a file; nothing was classified" in captured.err
    assert "nothing was classified" in captured.err and "a.png" not in captured.out
    assert list(out.iterdir()) == []  # no side file left behind


def test_dicom_out_naming_a_file_fails_before_classifying(tmp_path, test_model_path, capsys):
    pixels = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)
    (tmp_path / "films").mkdir()
    film = make_dicom(tmp_path / "films" / "a.dcm", pixels, bits_stored=12)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("in the way")
    argv = ["classify", str(film), "--model", str(test_model_path), "--dicom-out", str(blocker)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert f"--dicom-out {blocker}: cannot write there (a file is in the way" in captured.err
    assert "nothing was classified" in captured.err and "a.dcm" not in captured.out
    assert blocker.read_text() == "in the way"


def test_side_file_refuses_a_folder_target_at_once(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        SideFile(tmp_path)
    assert list(tmp_path.iterdir()) == []


def _device(path: Path) -> Path:
    """A character device of our own (the null device's numbers), never /dev/null itself:
    a refusal that failed would replace it, as ``--csv /dev/null`` run as root once did."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError):
        pytest.skip("making a device node needs root on Linux")
    return path


def _special_file(path: Path, kind: str) -> Path:
    """A named pipe ("fifo") or a device node ("device") at ``path``."""
    if kind == "fifo":
        os.mkfifo(path)
        return path
    return _device(path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_csv_naming_a_pipe_or_device_fails_before_classifying(
    kind, tmp_path, test_model_path, capsys
):
    """The CSV was renamed over the named pipe or the device and the run exited 0."""
    films = tmp_path / "films"
    write_png(films / "a.png", seed=1)
    target = _special_file(tmp_path / kind, kind)
    argv = ["classify", str(films), "--model", str(test_model_path), "--csv", str(target)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    named = "a named pipe" if kind == "fifo" else "a device"
    assert f"--csv {target}: it is {named}, not a file; nothing was classified" in err
    mode = target.lstat().st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISCHR(mode)


@pytest.mark.parametrize("where", ["given", "in-folder"])
def test_csv_naming_an_input_film_never_overwrites_it(where, tmp_path, test_model_path, capsys):
    """``classify a.png --csv a.png`` replaced the film by its own table."""
    films = tmp_path / "films"
    film = write_png(films / "a.png", seed=1)
    before = film.read_bytes()
    given = str(film) if where == "given" else str(films)
    assert main(["classify", given, "--model", str(test_model_path), "--csv", str(film)]) == 2
    err = capsys.readouterr().err
    assert f"--csv {film}: it is " in err and "not overwritten; nothing was classified" in err
    assert film.read_bytes() == before


@pytest.mark.parametrize(
    ("kind", "named"), [("fifo", "a named pipe"), ("dangling", "a symbolic link to nothing")]
)
def test_cam_dir_naming_a_non_folder_says_what_it_is(
    kind, named, tmp_path, test_model_path, capsys
):
    """A dangling link was "a file is in the way, not a folder", and there was no file."""
    maps = tmp_path / "maps"
    if kind == "fifo":
        os.mkfifo(maps)
    else:
        os.symlink(tmp_path / "gone", maps)
    films = tmp_path / "films"
    write_png(films / "a.png", seed=1)
    argv = ["classify", str(films), "--model", str(test_model_path), "--cam-dir", str(maps)]
    assert main(argv) == 2
    assert f"--cam-dir {maps}: it is {named}, not a folder" in capsys.readouterr().err


def test_save_baseline_over_the_database_it_reads_is_refused(tmp_path, capsys):
    """``monitor --db results.sqlite --save-baseline results.sqlite`` replaced the
    database by a baseline of itself."""
    db = tmp_path / "results.sqlite"
    db.write_bytes(b"SQLite format 3\x00" + bytes(100))
    before = db.read_bytes()
    assert main(["monitor", "--db", str(db), "--save-baseline", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"--save-baseline {db}: it is an input of this command, not overwritten" in err
    assert db.read_bytes() == before


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_validate_labels_naming_a_pipe_or_device_does_not_hang(kind, tmp_path):
    """Reading a named pipe (or /dev/zero) as the labels CSV never returned."""
    target = _special_file(tmp_path / kind, kind)
    (tmp_path / "films").mkdir()
    argv = ["validate", "--labels", str(target), "chest-3class", str(tmp_path / "films")]
    done = run_cli(tmp_path, *argv, "--no-pdf", "-o", str(tmp_path / "r"), timeout=120)
    assert done.code == 2, done.stderr
    named = "a named pipe" if kind == "fifo" else "a device"
    # the one check, validate.labels's, which the validate wizard meets too
    assert f"{target}: the labels file is {named}, not a file; not read" in done.stderr


def test_a_run_where_every_file_failed_gives_no_images_per_second(tmp_path, capsys):
    """``0 of 1 classified, 1 failed, 0.0 s (31.8 images/s)``: the rate counted the
    file that failed as an image classified."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG signature and nothing after it
    assert main(["classify", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "0 of 1 classified, 1 failed" in err
    assert "images/s" not in err
