"""The DICOM node and the pacs commands against hostile callers and hostile values.

Everything runs for real on loopback: the ``StorageNode`` listening on 127.0.0.1, a
pynetdicom sender or raw TCP sockets calling it, the ``xraydesk pacs`` commands through
``xraydesk.cli.main``, and Orthanc (tests/orthanc.py) where a PACS must answer a C-FIND.
The objects are built here, with distinctive fake identifiers that the logs must never
show.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation as DX_STORAGE
from pynetdicom.sop_class import Verification

from tests.dicom_factory import make_dicom
from tests.dicomnet.hostile_patient import FAKE_NAME, assert_no_identifier, hostile_patient, logged
from tests.dicomnet.tls_files import self_signed_tls
from tests.orthanc import free_port
from xraydesk import paths
from xraydesk.cli import main
from xraydesk.dicomnet import NodeConfig, StorageNode, Worklist, echo, make_node

NODE_AET = "XRAYDESK"
SENDER = "SENDER"


def _config(**changes) -> NodeConfig:
    return NodeConfig(ae_title=NODE_AET, port=0, allowed_ae_titles=(SENDER,), **changes)


@pytest.fixture
def chunked_send(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send files as their bytes, undecoded (pynetdicom's documented switch)."""
    monkeypatch.setattr(pynetdicom_config, "STORE_SEND_CHUNKED_DATASET", True)


def _sender(*syntaxes: str) -> AE:
    ae = AE(ae_title=SENDER)
    ae.add_requested_context(DX_STORAGE, list(syntaxes) or [ExplicitVRLittleEndian])
    ae.add_requested_context(Verification)
    return ae


def _associate(port: int):
    return _sender().associate("127.0.0.1", port, ae_title=NODE_AET)


@pytest.fixture
def node() -> Iterator[StorageNode]:
    with StorageNode(_config(idle_timeout_s=1.0), None) as running:
        yield running


def _stored_files() -> list[Path]:
    return sorted((paths.data_dir() / "dicom").rglob("*.dcm"))


# -- idle connections and the association limit ----------------------------------------------
def test_idle_connections_neither_lock_out_callers_nor_stay_open(node: StorageNode) -> None:
    idle = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(20)]
    try:
        assoc = _sender().associate("127.0.0.1", node.port, ae_title=NODE_AET)
        assert assoc.is_established  # at once: silent connections hold no association slot
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
        for sock in idle:  # the node closes each after idle_timeout_s (1 s here)
            sock.settimeout(20)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()


def test_too_many_associations_are_refused_with_the_reason_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with StorageNode(_config(max_associations=2), None) as running:
        held = [_associate(running.port) for _ in range(2)]
        assert all(a.is_established for a in held)
        refused = [_associate(running.port) for _ in range(5)]
        assert all(a.is_rejected for a in refused)
        for assoc in held:
            assoc.release()
        again = _associate(running.port)
        assert again.is_established  # the slots came back
        again.release()
    ours = [m for m in logged(caplog) if m.startswith("refused")]
    assert len(ours) == 1, ours
    assert "2 associations are open already (max_associations)" in ours[0]
    assert not any("AE title" in m for m in logged(caplog))


def test_a_refused_ae_title_is_named_as_the_reason(
    node: StorageNode, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a hostile caller does not check its own title (pynetdicom's documented validators)
    monkeypatch.setitem(pynetdicom_config.VALIDATORS, "AE", lambda value: (True, ""))
    intruder = AE(ae_title="INTRUDER\nFORGED")
    intruder.add_requested_context(Verification)
    assert intruder.associate("127.0.0.1", node.port, ae_title=NODE_AET).is_rejected
    lines = [m for m in logged(caplog) if m.startswith("refused")]
    assert len(lines) == 1 and "calling AE title is not allowed" in lines[0]
    assert "\n" not in lines[0]  # the caller's title is printed escaped, not as a new line


def test_refused_associations_give_their_slot_back() -> None:
    with StorageNode(_config(max_associations=1), None) as running:
        intruder = AE(ae_title="INTRUDER")
        intruder.add_requested_context(Verification)
        for _ in range(3):
            assert intruder.associate("127.0.0.1", running.port, ae_title=NODE_AET).is_rejected
        for _ in range(3):
            assoc = _associate_when_free(running.port)
            assert assoc.is_established
            assoc.abort()  # an abort, not a release, gives the slot back too
        assoc = _associate_when_free(running.port)
        assert assoc.is_established
        assoc.release()


def _associate_when_free(port: int):
    """An abort is sent without waiting for the node: give it a moment to see it."""
    deadline = time.monotonic() + 15
    while True:
        assoc = _associate(port)
        if assoc.is_established or time.monotonic() > deadline:
            return assoc
        time.sleep(0.1)


def test_a_silent_tls_client_does_not_stop_the_node_accepting(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    tls = self_signed_tls(tmp_path)
    config = NodeConfig(
        ae_title=NODE_AET, port=0, allowed_ae_titles=(NODE_AET,), tls=tls, idle_timeout_s=2.0
    )
    with StorageNode(config, None) as secure:
        silent = socket.create_connection(("127.0.0.1", secure.port))  # no TLS hello
        try:
            # the handshake waits in the connection's thread, not in the accept loop
            over_tls = make_node("secure", NODE_AET, "127.0.0.1", secure.port, tls=True)
            assert echo(config, over_tls) < 10
            silent.settimeout(20)
            with contextlib.suppress(ConnectionResetError):
                assert silent.recv(1) == b""  # closed after idle_timeout_s
        finally:
            silent.close()


def test_a_pdu_longer_than_the_maximum_is_not_read(
    node: StorageNode, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_connection(("127.0.0.1", node.port)) as sock:
        sock.sendall(struct.pack(">BBL", 0x01, 0, 0x7FFFFFF0) + b"\0" * 65536)
        sock.settimeout(20)
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(65536):
                pass  # the node closes the connection instead of reading 2 GB
    lines = [m for m in logged(caplog) if m.startswith("refused")]
    assert len(lines) == 1 and "longer than the node's maximum PDU" in lines[0]


# -- hostile objects ---------------------------------------------------------------------------
def _element(group: int, element: int, value: bytes, length: int | None = None) -> bytes:
    value += b"\0" * (len(value) % 2)
    return struct.pack("<HHL", group, element, len(value) if length is None else length) + value


def _raw_object(path: Path, body: bytes) -> Path:
    """A Part 10 file (Implicit VR Little Endian) whose data set is ``body`` as it is."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    with path.open("ab") as fh:
        fh.write(body)
    return path


def test_a_name_claiming_four_gigabytes_is_refused_in_one_log_line(
    node: StorageNode, tmp_path: Path, chunked_send: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # the name's length field says 0xFFFFFFF0: it swallows the rest, 3,000 "components"
    rest = (b"\\" + b"A" * 100) * 3000 + bytes(range(256)) * 64
    body = _element(0x0008, 0x0016, DX_STORAGE.encode())
    body += _element(0x0008, 0x0018, generate_uid().encode())
    body += _element(0x0008, 0x0060, b"DX")
    body += _element(0x0010, 0x0010, FAKE_NAME.encode() + rest, length=0xFFFFFFF0)
    path = _raw_object(tmp_path / "long-name.dcm", body)
    assoc = _sender(ImplicitVRLittleEndian).associate("127.0.0.1", node.port, ae_title=NODE_AET)
    try:
        assert assoc.send_c_store(path).Status == 0xC210
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()
    warnings = logged(caplog)
    assert 1 <= len(warnings) <= 2, warnings[:5]
    assert "Patient's Name is 4294967280 bytes long" in warnings[0]
    assert not any("Qwertz" in m for m in logged(caplog, logging.DEBUG))
    assert _stored_files() == []


# The sender runs in its own process, so that tracemalloc below measures the node alone.
_SEND_FILES = """
import sys
from pynetdicom import AE, _config
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation
_config.STORE_SEND_CHUNKED_DATASET = True  # streamed from the file, never held whole
ae = AE(ae_title=sys.argv[1])
ae.add_requested_context(DigitalXRayImageStorageForPresentation, "1.2.840.10008.1.2.1")
ae.dimse_timeout = 120
assoc = ae.associate("127.0.0.1", int(sys.argv[2]), ae_title=sys.argv[3])
for path in sys.argv[4:]:
    status = assoc.send_c_store(path)
    print(hex(status.Status) if "Status" in status else "no answer")
assoc.release()
"""


def test_an_object_over_the_cap_is_refused_unread_and_unstored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = make_dicom(tmp_path / "big.dcm", np.zeros((8192, 4096), np.uint16), modality="DX")
    big_bytes = big.stat().st_size  # 64 MiB of pixels
    small = make_dicom(tmp_path / "small.dcm", np.zeros((64, 64), np.uint16), modality="DX")
    files = [str(big), str(small)]
    with StorageNode(_config(max_object_mb=1), None) as running:
        tracemalloc.start()
        try:
            sent = subprocess.run(
                [sys.executable, "-c", _SEND_FILES, SENDER, str(running.port), NODE_AET, *files],
                capture_output=True,
                text=True,
                timeout=300,
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # refused, out of resources; the next object on the same association is fine
    assert sent.stdout.split() == ["0xa700", "0x0"], sent.stderr[-2000:]
    # the object was dropped as it came: a few PDUs of 4 MiB at most, never 64 MiB
    assert peak < big_bytes / 2, f"peak {peak / 2**20:.1f} MiB"
    stored = _stored_files()
    assert [pydicom.dcmread(p).SOPInstanceUID for p in stored] == [
        pydicom.dcmread(small).SOPInstanceUID
    ]
    with Worklist() as worklist:
        assert worklist.count() == 1
    assert sum("larger than 1 MB (max_object_mb)" in m for m in logged(caplog)) == 1


# -- identifiers: never logged, printed escaped ------------------------------------------------
def test_worklist_prints_identifiers_escaped_and_logs_none(
    test_classifier,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    source = hostile_patient(tmp_path / "hostile.dcm")
    caplog.clear()
    with StorageNode(_config(), test_classifier) as running:
        assoc = _sender().associate("127.0.0.1", running.port, ae_title=NODE_AET)
        try:
            assert assoc.send_c_store(source).Status == 0x0000
        finally:
            assoc.release()
        assert running.wait_idle(60)
    assert main(["pacs", "worklist"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    rows = out.splitlines()
    assert len(rows) == 1 and rows[0].count("\t") == 5  # no forged row, no forged column
    assert "\\x1b]0;PWNED-ID-7731\\x07\\x1b[2J\\nFORGED\\tROW" in rows[0]
    assert main(["pacs", "worklist", "--json"]) == 0
    assert "\x1b" not in capsys.readouterr().out
    assert_no_identifier(caplog)


# -- pacs command exit codes and dates ---------------------------------------------------------
def test_echo_to_an_unreachable_node_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    NodeConfig(nodes={"gone": make_node("gone", "GONE", "127.0.0.1", free_port())}).save()
    assert main(["pacs", "echo", "gone"]) == 1
    assert "could not be reached" in capsys.readouterr().err
    assert main(["pacs", "echo", "missing"]) == 2  # configuration: usage error


@pytest.mark.parametrize("bad", ["notadate", "2024-13-01", "20240230", "2024010"])
def test_find_refuses_a_malformed_date(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    NodeConfig(nodes={"gone": make_node("gone", "GONE", "127.0.0.1", free_port())}).save()
    with pytest.raises(SystemExit) as exit_:
        main(["pacs", "find", "gone", "--from", bad])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"'{bad}' is not a date (YYYYMMDD or YYYY-MM-DD)" in err


def test_query_dates_are_sent_as_dicom_ranges() -> None:
    from xraydesk.dicomnet.scu import QueryError, StudyQuery

    query = StudyQuery(date_from="2024-01-02", date_to="20241231")
    assert query.identifier().StudyDate == "20240102-20241231"
    assert StudyQuery(date_to="2024-02-29").identifier().StudyDate == "-20240229"
    with pytest.raises(QueryError):
        StudyQuery(date_from="notadate").identifier()


# -- the results database ----------------------------------------------------------------------
def test_results_database_is_private() -> None:
    from xraydesk.batch.database import ResultStore
    from xraydesk.dicomnet.worklist import WorkItem

    db = paths.data_dir() / "results.sqlite"
    with Worklist() as worklist:
        worklist.add(WorkItem(sop_uid="1.2.3.4", patient_id="P-SECRET", patient_name="Doe^Jane"))
        with ResultStore() as store:
            assert store.path == db
            parts = [p for p in db.parent.iterdir() if p.name.startswith("results.sqlite")]
            assert {p.name for p in parts} >= {"results.sqlite", "results.sqlite-wal"}
            for part in parts:
                assert stat.S_IMODE(part.stat().st_mode) == 0o600, part.name
    os.chmod(db, 0o644)  # made by an older version: tightened on the next open
    Worklist().close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
