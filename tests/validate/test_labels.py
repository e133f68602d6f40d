"""A site's labels (``validate.labels``) when the labels file or an image path is hostile:
a named pipe, a device, a symbolic link loop, a path too long. The GUI's validation
wizard calls ``load_labelled`` without the command line's checks, so each is refused
here with the file and the cause, at once (a pipe waited forever for a writer)."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path

import pytest

from tests.hostile_files import small_png
from xraydesk.validate.labels import LabelError, load_labelled

CLASSES = ("normal", "pneumonia")
LOOP = "a loop of symbolic links"
TOO_LONG = "the path is too long for this system"


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for i, label in enumerate(CLASSES):
        (site / label).mkdir(parents=True)
        (site / label / f"x{i}.png").write_bytes(small_png(seed=i))
    return site


def _refusal(site: Path, labels: Path | None = None) -> str:
    """The LabelError's message, which must come within seconds (a thread: a pipe opened
    for reading would block the test forever)."""
    out: dict[str, BaseException | None] = {}

    def load() -> None:
        try:
            load_labelled(site, CLASSES, {}, csv_path=labels)
            out["error"] = None
        except BaseException as exc:  # judged below
            out["error"] = exc

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive() and labels is not None:
        with contextlib.suppress(OSError):  # a reader stuck opening a pipe: give it an end
            os.close(os.open(labels, os.O_WRONLY | os.O_NONBLOCK))
    assert not worker.is_alive(), "load_labelled hung on the labels file"
    error = out["error"]
    assert isinstance(error, LabelError), error
    return str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_labels_file_that_is_a_named_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    message = _refusal(_site(tmp_path), fifo)
    assert message == f"{fifo}: the labels file is a named pipe, not a file; not read"


def test_a_labels_file_that_is_a_device_is_refused_not_read(tmp_path: Path) -> None:
    device = tmp_path / "zero.csv"  # like /dev/zero: reading it never ends
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    message = _refusal(_site(tmp_path), device)
    assert message == f"{device}: the labels file is a device, not a file; not read"


def test_a_labels_file_that_is_a_folder_or_a_loop_or_too_long_is_named(tmp_path: Path) -> None:
    site = _site(tmp_path)
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop.name)
    long_name = tmp_path / ("l" * 300 + ".csv")
    assert _refusal(site, tmp_path).endswith("the labels file is a folder, not a file; not read")
    assert (
        _refusal(site, loop)
        == f"{loop}: cannot read the labels file ({LOOP}: it leads to no file or folder)"
    )
    assert _refusal(site, long_name).startswith(
        f"{long_name}: cannot read the labels file ({TOO_LONG}"
    )


def test_a_row_naming_a_pipe_a_loop_or_a_path_too_long_is_named_with_its_line(
    tmp_path: Path,
) -> None:
    site = _site(tmp_path)
    os.mkfifo(site / "pipe.png")
    (site / "loop.png").symlink_to("loop.png")
    cases = {"pipe.png": "it is a named pipe, not an image file", "loop.png": LOOP}
    cases["d/" * 2100 + "a.png"] = TOO_LONG  # past PATH_MAX: is_file raised OSError
    for name, cause in cases.items():
        labels = tmp_path / "labels.csv"
        labels.write_text(f"path,label\nnormal/x0.png,normal\n{name},normal\n")
        message = _refusal(site, labels)
        assert message.startswith(f"{labels}, line 3: {site / name}: {cause}"), message


def test_a_link_loop_in_a_class_folder_is_named_with_its_cause(tmp_path: Path) -> None:
    site = _site(tmp_path)
    loop = site / "normal" / "loop.png"
    loop.symlink_to(loop.name)
    assert _refusal(site) == f"{loop}: {LOOP}: it leads to no file or folder"


def test_a_site_folder_too_long_is_named_not_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / ("s" * 300)
    assert _refusal(folder) == f"{folder}: {TOO_LONG} (a name or the whole path)"


def test_a_good_csv_still_loads(tmp_path: Path) -> None:
    site = _site(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nnormal/x0.png,normal\npneumonia/x1.png,Pneumonia\n")
    labelled = load_labelled(site, CLASSES, {}, csv_path=labels)
    assert [(i.name, i.label) for i in labelled.images] == [
        ("normal/x0.png", "normal"),
        ("pneumonia/x1.png", "pneumonia"),
    ]
