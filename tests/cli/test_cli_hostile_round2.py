"""``xraydesk classify`` at the front door against hostile folders and outputs (issue 26 #9).

A folder 1,000 levels deep, a data folder that cannot be created, a CSV file that cannot
be written for a single file, a read-only ``--cam-dir``, a file whose read never returns
(Ctrl-C must not wait for it) and the memory a 6000 x 6000 film's heat map costs.

Read-only places are taken from sysfs (``/sys``): writing there fails even for root,
where permission bits (``chmod``) do not.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.batch_helpers import write_png
from tests.paths import REPO_ROOT
from tests.real_films import write_real_film
from xraydesk.cli import main

READ_ONLY = Path("/sys")
needs_sysfs = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and READ_ONLY.is_dir()), reason="needs Linux sysfs"
)


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "XRAYDESK_DATA_DIR": str(data_dir)}


def test_a_folder_1000_levels_deep_is_walked(tmp_path, test_model_path, capsys):
    """The recursive walk ended in RecursionError with 0 rows."""
    root = tmp_path / "deep"
    chain = _deep_chain(root, 1000)
    try:
        write_png(chain[-1] / "bottom.png", seed=1)
        write_png(root / "top.png", seed=2)
        code = main(["classify", "-r", str(root), "--model", str(test_model_path), "--json"])
    finally:  # pytest's own clean-up (shutil.rmtree) recurses and would fail on it later
        _remove_chain(chain)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "RecursionError" not in captured.err
    lines = captured.out.splitlines()
    assert len(lines) == 2 and '"error": null' in lines[0] and '"error": null' in lines[1]
    assert str(root / "top.png") in lines[0] and "bottom.png" in lines[1]


def _deep_chain(root: Path, depth: int) -> list[Path]:
    """root/d/d/.../d, made one level at a time (os.makedirs itself recurses)."""
    chain = [root]
    root.mkdir()
    for _ in range(depth):
        chain.append(chain[-1] / "d")
        chain[-1].mkdir()
    return chain


def _remove_chain(chain: list[Path]) -> None:
    for folder in reversed(chain):
        for entry in folder.iterdir():
            if not entry.is_dir():
                entry.unlink()
        folder.rmdir()


@needs_sysfs
@pytest.mark.parametrize("where", ["sub", "file"])
def test_a_data_folder_that_cannot_be_made_is_named(where, tmp_path, monkeypatch, capsys):
    """First use of a read-only (or blocked) data folder was an OSError traceback."""
    if where == "sub":
        data = READ_ONLY / "xraydesk-data"
    else:
        (tmp_path / "a-file").write_text("in the way")
        data = tmp_path / "a-file" / "data"
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(data))
    image = write_png(tmp_path / "in" / "a.png", seed=3)
    assert main(["classify", str(image.parent)]) == 2
    err = capsys.readouterr().err
    assert f"cannot create XRayDesk's data folder {data}" in err
    assert "XRAYDESK_DATA_DIR" in err and "Traceback" not in err


@needs_sysfs
def test_a_csv_error_on_one_file_does_not_claim_the_database(tmp_path, test_model_path, capsys):
    """Single files are not recorded: "the results are safe in the database" was false."""
    image = write_png(tmp_path / "a.png", seed=4)
    csv = READ_ONLY / "out.csv"
    assert main(["classify", str(image), "--model", str(test_model_path), "--csv", str(csv)]) == 2
    err = capsys.readouterr().err
    assert f"{csv}: could not write the CSV file" in err
    assert "safe in the database" not in err and "nothing was classified" in err


@needs_sysfs
def test_a_read_only_cam_dir_fails_before_classifying(tmp_path, test_model_path, capsys):
    """It exited 0 with one warning per file."""
    image = write_png(tmp_path / "a.png", seed=5)
    argv = ["classify", str(image), "--model", str(test_model_path), "--cam-dir", str(READ_ONLY)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert f"--cam-dir {READ_ONLY}: cannot write there" in captured.err
    assert "nothing was classified" in captured.err
    assert "a.png" not in captured.out  # checked before any row


# A regular file whose open() blocks, as a network file whose server went away does: the
# holder takes a write lease (fcntl F_SETLEASE), so another process's open waits for the
# holder to give it up (or for /proc/sys/fs/lease-break-time, 45 s by default). A FIFO
# cannot play that part: the engine refuses a FIFO on stat, before opening it. The holder
# prints "opened" when the kernel asks for the lease back: a reader is now stuck.
LEASE_HOLDER = """
import fcntl, os, signal, sys
signal.signal(signal.SIGIO, lambda *_: print("opened", flush=True))
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, getattr(fcntl, "F_SETLEASE", 1024), fcntl.F_WRLCK)
print("leased", flush=True)
sys.stdin.read()
"""


def _line(process: subprocess.Popen[str], seconds: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    return process.stdout.readline().strip() if ready else "(nothing)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file leases are Linux's")
def test_ctrl_c_does_not_wait_for_a_stuck_read(tmp_path, test_model_path):
    """A read that never returned kept a Ctrl-C'd run alive until the read did (235 s on
    a network share): the decode threads were joined on the way out."""
    folder = tmp_path / "in"
    write_png(folder / "a.png", seed=6)
    stuck = write_png(folder / "stuck.png", seed=7)
    model = str(test_model_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, str(stuck)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        if _line(holder, 60) != "leased":
            pytest.skip("this file system gives no file leases")
        run = subprocess.Popen(
            [sys.executable, "-m", "xraydesk", "classify", str(folder), "--model", model],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(tmp_path / "data"),
        )  # fmt: skip
        assert _line(holder, 300) == "opened"  # a decode thread is stuck in open()
        run.send_signal(signal.SIGINT)
        try:  # well inside the 45 s after which the kernel would end the lease itself
            err = run.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            run.kill()
            pytest.fail(f"still running 30 s after Ctrl-C: {run.communicate()[1][-2000:]}")
        assert run.returncode == 130, err
        assert "xraydesk: interrupted" in err and "Traceback" not in err
        with sqlite3.connect(tmp_path / "data" / "results.sqlite") as db:
            assert db.execute("SELECT status FROM runs").fetchall() == [("cancelled",)]
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(timeout=60)


PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "xraydesk", *sys.argv[1:]], capture_output=True)
sys.stderr.write(done.stderr.decode(errors="replace"))
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
CAM_PEAK_BOUND_KB = 2_500_000  # the full-size overlay peaked at 3.45-3.8 GB


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="ru_maxrss is not reported there")
def test_heat_map_of_a_huge_film_stays_within_memory(tmp_path, test_model_path, shared_data):
    """--cam-dir on a 6000 x 6000 film peaked at 3.45 GB (full-size float copies of the
    film and the map in three channels); the overlay file is now at most 2048 px a side.
    A real chest film, enlarged: the gate withholds the class and heat map of synthetic
    pictures, so a drawn pattern would write no overlay at all."""
    image = write_real_film(shared_data, tmp_path / "huge.png", index=0, size=6000)
    cams = tmp_path / "cams"
    argv = ["classify", str(image), "--model", str(test_model_path), "--cam-dir", str(cams)]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *argv],
        capture_output=True, text=True, timeout=900, env=_env(tmp_path / "data"),
    )  # fmt: skip
    code, peak_kb = (int(v) for v in done.stdout.split())
    assert code == 0, done.stderr
    written = list(cams.iterdir())
    assert len(written) == 1
    with Image.open(written[0]) as overlay:  # 2048 px of film, the legend strip below
        assert overlay.width == 2048 and overlay.height > 2048
    assert peak_kb < CAM_PEAK_BOUND_KB, f"peak {peak_kb / 1e6:.2f} GB"
