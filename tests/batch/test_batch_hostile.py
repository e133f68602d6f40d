"""Issue 18 in the batch engine: hostile files become error rows naming the cause, never a
hang, a silent skip or the end of the run (defects 3, 5 and 10)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.batch_helpers import write_png
from tests.paths import REPO_ROOT
from xraydesk.batch.rows import ResultRow
from xraydesk.batch.run import BatchOptions, BatchRun, classify_paths
from xraydesk.imaging.discover import DiscoveryStats, count_images, iter_images

# -- 3: pipes, devices and huge sparse files are refused on stat ----------------------------


def _unblock_fifo(fifo: Path) -> None:
    """Give a reader stuck opening the FIFO an end of file (nothing if none is waiting)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


@pytest.mark.skipif(sys.platform != "linux", reason="FIFOs, /dev/zero and sparse files")
def test_fifo_device_and_huge_sparse_file_are_refused_before_hashing(tmp_path, test_classifier):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as fh:  # a PNG header, then 8 GiB of hole
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(8 * 1024**3)
    inputs = [fifo, Path("/dev/zero"), huge]
    result: dict[str, list[ResultRow]] = {}
    start = time.monotonic()
    worker = threading.Thread(
        target=lambda: result.setdefault("rows", list(classify_paths(inputs, test_classifier))),
        daemon=True,
    )
    worker.start()
    worker.join(30)
    try:
        assert not worker.is_alive(), "the batch hung on a pipe, a device or a huge file"
    finally:
        _unblock_fifo(fifo)
    assert time.monotonic() - start < 10
    rows = result["rows"]
    assert [r.path for r in rows] == inputs
    assert "named pipe" in rows[0].error
    assert "device" in rows[1].error
    assert "too large" in rows[2].error
    assert all(r.content_hash is None for r in rows)  # refused before a byte was read


# -- 5: permission errors ------------------------------------------------------------------

AS_ANOTHER_USER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from xraydesk.batch.run import BatchOptions, BatchRun
    from xraydesk.classifier import Classifier

    study, model, warm_up, uid, gid = sys.argv[1:6]
    classifier = Classifier.load(model, device="cpu")
    # The interpreter and its libraries may live where the other user cannot read
    # (/root/.pyenv): a first run imports everything the batch engine loads lazily.
    BatchRun([warm_up], classifier, BatchOptions(record=False)).run()
    if int(uid) >= 0:
        os.setgroups([])
        os.setgid(int(gid))
        os.setuid(int(uid))  # from here the kernel checks every access as that user
    batch = BatchRun([study], classifier, BatchOptions(recursive=True))
    rows = [[str(r.path), r.error] for r in batch.rows()]
    s = batch.summary
    print(json.dumps({"rows": rows, "status": s.status, "message": s.message,
                      "failed": s.failed, "classified": s.classified,
                      "not_images": s.not_images, "uid": os.geteuid()}))
    """
)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_image_and_subfolder_are_error_rows_and_the_run_goes_on(test_model_path):
    """chmod does not stop root, so as root the run happens in a child process that drops
    to the 'nobody' user (a real permission check by the kernel, not a mock)."""
    import pwd

    uid = gid = -1
    if os.geteuid() == 0:
        try:
            uid, gid = pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid
        except KeyError:
            pytest.skip("running as root and there is no 'nobody' user to drop to")
    base = Path(tempfile.mkdtemp(prefix="xraydesk-perm-"))
    try:
        study = base / "study"
        write_png(study / "a-ok.png", seed=1)
        locked = write_png(study / "b-locked.png", seed=2)
        sealed = study / "c-sealed"
        write_png(sealed / "inner.png", seed=3)
        later = write_png(study / "d-open" / "later.png", seed=4)
        warm_up = write_png(base / "warm-up.png", seed=5)
        data = base / "data"
        data.mkdir()
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if uid >= 0:
            os.chown(data, uid, gid)
        locked.chmod(0o000)
        sealed.chmod(0o000)
        script = base / "child.py"
        script.write_text(AS_ANOTHER_USER)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "XRAYDESK_DATA_DIR": str(data)}
        args = [str(study), str(test_model_path), str(warm_up), str(uid), str(gid)]
        done = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            env=env,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.splitlines()[-1])
    finally:
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755)
        shutil.rmtree(base)
    assert report["uid"] != 0
    errors = {Path(p).name: e for p, e in report["rows"]}
    assert report["status"] == "completed", report["message"]
    assert errors["a-ok.png"] is None and errors["later.png"] is None  # the run went on
    assert errors["b-locked.png"] == "permission denied: the file cannot be read"
    assert "permission denied" in errors["c-sealed"] and "folder" in errors["c-sealed"]
    assert (report["classified"], report["failed"], report["not_images"]) == (2, 2, 0)
    assert str(later) in [p for p, _ in report["rows"]]


# -- 10: a file that claims to be an image ---------------------------------------------------


def test_files_claiming_to_be_images_are_error_rows_others_are_counted(tmp_path, test_classifier):
    folder = tmp_path / "drop"
    write_png(folder / "good.png", seed=1)
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "text.png").write_text("not a picture")
    (folder / "text.dcm").write_text("not a scan either")
    (folder / "notes.txt").write_text("a note")
    (folder / "blob").write_bytes(os.urandom(300))
    stats = DiscoveryStats()
    found = [p.name for p in iter_images([folder], stats=stats)]
    assert found == ["empty.dcm", "good.png", "text.dcm", "text.png"]
    assert stats.not_images == 2 and count_images([folder]) == 4
    batch = BatchRun([folder], test_classifier, BatchOptions(record=False))
    errors = {r.path.name: r.error for r in batch.rows()}
    assert errors["good.png"] is None
    assert errors["empty.dcm"] == "empty file (0 bytes)"
    assert errors["text.png"].startswith("not an image: unrecognised content")
    assert errors["text.dcm"].startswith("not an image: unrecognised content")
    s = batch.summary
    assert (s.classified, s.failed, s.not_images) == (1, 3, 2)
