"""``send_files`` (the C-STORE every sender goes through: ``pacs send``, the GUI's
results, ``--dicom-out``) checks each file on ``stat`` before reading any: a named pipe
blocked the DICOM reader for good and a folder was "not a DICOM file ([Errno 21] ...)"."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path

import pytest

from xraydesk.dicomnet import NodeConfig, make_node, send_files
from xraydesk.errors import ImageLoadError

NODE = make_node("pacs", "ORTHANC", "127.0.0.1", 1)  # never called: refused before


def _refusal(files: list[Path]) -> ImageLoadError:
    """The error ``send_files`` raises, which must come within seconds."""
    out: dict[str, BaseException] = {}

    def send() -> None:
        try:
            send_files(NodeConfig(), NODE, files)
        except BaseException as exc:  # judged below
            out["error"] = exc

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():
        for path in files:  # a reader stuck opening a pipe: give it an end of file
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    assert not worker.is_alive(), "send_files hung reading a file"
    assert isinstance(out.get("error"), ImageLoadError), out.get("error")
    return out["error"]  # type: ignore[return-value]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_named_pipe_is_refused_before_any_file_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "results.dcm"
    os.mkfifo(fifo)
    error = _refusal([fifo])
    assert str(error) == f"{fifo}: not a regular file (a named pipe): not read"


def test_a_folder_and_a_device_are_named_with_what_they_are(tmp_path: Path) -> None:
    assert str(_refusal([tmp_path])) == f"{tmp_path}: is a folder, not an image file"
    device = tmp_path / "zero"
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    assert str(_refusal([device])) == f"{device}: not a regular file (a device): not read"


def test_an_association_aborted_half_way_fails_the_rest_in_one_line(tmp_path: Path):
    """A peer (or a time-out) that aborted the association after some files made the
    next C-STORE raise pynetdicom's RuntimeError: a traceback at whoever sent."""
    import numpy as np
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation

    from tests.dicom_factory import make_dicom

    files = [
        make_dicom(tmp_path / f"f{i}.dcm", np.full((16, 16), i * 10, np.uint16)) for i in range(5)
    ]
    received = []

    def on_store(event):
        received.append(event.request.AffectedSOPInstanceUID)
        if len(received) == 2:
            event.assoc.abort()  # the peer gives up after its second object
        return 0x0000

    scp = AE(ae_title="PEER")
    scp.add_supported_context(DigitalXRayImageStorageForPresentation)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        port = server.server_address[1]
        node = make_node("peer", "PEER", "127.0.0.1", port)
        outcome = send_files(NodeConfig(), node, files)
    finally:
        server.shutdown()
    assert outcome.completed + outcome.failed == 5
    assert outcome.failed >= 3 and not outcome.ok
    assert any("stopped answering after" in m and "not sent" in m for m in outcome.messages)
