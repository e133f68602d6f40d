"""The DICOM node against a real PACS: Orthanc on loopback (see tests/orthanc.py).

Covers C-ECHO both ways; the real sample DICOMs uploaded to Orthanc over REST, found by
C-FIND and C-MOVEd to a running ``xraydesk listen`` (a subprocess), with worklist rows
checked; results (SR + Secondary Capture) accepted by Orthanc by C-STORE, and sent back
automatically by the node; a refused calling AE title and address; malformed objects
that do not stop the node; TLS associations.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config
from pynetdicom.sop_class import SecondaryCaptureImageStorage, Verification

from tests.dicomnet.tls_files import self_signed_tls
from tests.orthanc import ORTHANC_AET, Orthanc, orthanc_server  # noqa: F401 - fixture
from xraydesk import paths
from xraydesk.dicomnet import (
    DicomNetError,
    NodeConfig,
    StorageNode,
    StudyQuery,
    Worklist,
    echo,
    find_studies,
    make_node,
    make_results,
    move_studies,
    send_files,
)
from xraydesk.dicomnet.worklist import CLASSIFIED, SKIPPED

pytestmark = pytest.mark.data

# The two SIIM files share one SOP Instance UID: Orthanc keeps one of them.
SAMPLES = (
    "siim-cr-jpeg-baseline.dcm",
    "rsna-cr-jpeg-baseline.dcm",
    "nih-dx-uncompressed.dcm",
    "cr-monochrome1-10bit-no-preamble.dcm",
)
NODE_AET = "XRAYDESK"


def _config(orthanc: Orthanc, **changes) -> NodeConfig:
    pacs = make_node("pacs", ORTHANC_AET, "127.0.0.1", orthanc.dicom_port)
    return NodeConfig(ae_title=NODE_AET, port=0, nodes={"pacs": pacs}, **changes)


@pytest.fixture
def node(orthanc_server: Orthanc, test_classifier) -> Iterator[StorageNode]:  # noqa: F811
    with StorageNode(_config(orthanc_server), test_classifier) as running:
        orthanc_server.add_modality("xraydesk", NODE_AET, running.port)
        yield running


@pytest.fixture(scope="module")
def uploaded(orthanc_server: Orthanc, samples_dir: Path) -> dict[str, pydicom.Dataset]:  # noqa: F811
    """Study Instance UID -> header of each sample, uploaded through Orthanc's REST API."""
    studies = {}
    for name in SAMPLES:
        answer = orthanc_server.upload(samples_dir / "dicom" / name)
        assert answer["Status"] in ("Success", "AlreadyStored")
        ds = pydicom.dcmread(samples_dir / "dicom" / name, force=True, stop_before_pixels=True)
        studies[str(ds.StudyInstanceUID)] = ds
    assert len(studies) == len(SAMPLES)
    return studies


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_echo_both_ways(orthanc_server: Orthanc, node: StorageNode) -> None:  # noqa: F811
    assert echo(node.config, node.config.node("pacs")) < 10
    assert orthanc_server.post_json("/modalities/xraydesk/echo", {}) == {}


def test_find_then_move_to_the_listen_command(
    orthanc_server: Orthanc,  # noqa: F811
    uploaded: dict[str, pydicom.Dataset],
    test_model_path: Path,
    tmp_path: Path,
) -> None:
    config = _config(orthanc_server)
    pacs = config.node("pacs")
    found = find_studies(config, pacs, StudyQuery())  # CR and DX, no other filter
    assert {m.study_uid for m in found} == set(uploaded)
    for uid, ds in uploaded.items():
        match = next(m for m in found if m.study_uid == uid)
        assert match.modalities == ds.Modality and match.patient_id == ds.get("PatientID", "")
    nih = next(ds for ds in uploaded.values() if ds.Modality == "DX")
    only_dx = find_studies(config, pacs, StudyQuery(modalities=("DX",)))
    assert [m.study_uid for m in only_dx] == [nih.StudyInstanceUID]
    by_patient = find_studies(config, pacs, StudyQuery(patient_id=nih.PatientID))
    assert [m.study_uid for m in by_patient] == [nih.StudyInstanceUID]
    dated = [ds for ds in uploaded.values() if ds.get("StudyDate")]
    day = str(dated[0].StudyDate)
    in_range = find_studies(config, pacs, StudyQuery(date_from=day, date_to=day))
    assert {m.study_uid for m in in_range} == {
        uid for uid, ds in uploaded.items() if ds.get("StudyDate") == day
    }
    assert find_studies(config, pacs, StudyQuery(accession="NO-SUCH-ACCESSION")) == []

    data_dir = paths.data_dir()
    env = {**os.environ, "XRAYDESK_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "xraydesk", "listen", "--port", "0", "--allow-ae", ORTHANC_AET]
    cmd += ["--model", str(test_model_path), "--device", "cpu"]
    listen = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert listen.stderr is not None
        line = listen.stderr.readline().decode()
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+) as XRAYDESK", line).group(1))
        orthanc_server.add_modality("xraydesk", NODE_AET, port)
        outcome = move_studies(config, pacs, list(uploaded))
        assert outcome.ok and outcome.completed == len(uploaded)
        with Worklist() as worklist:
            _wait(lambda: worklist.count(CLASSIFIED) == len(uploaded))
            rows = worklist.items()
        assert listen.poll() is None
    finally:
        listen.terminate()
        out, err = listen.communicate(timeout=30)
    assert listen.returncode == 0, err.decode()[-2000:]
    assert {r.study_uid for r in rows} == set(uploaded)
    root = data_dir / "dicom"
    for row in rows:
        src = uploaded[row.study_uid]
        assert row.calling_ae == ORTHANC_AET and row.modality == src.Modality
        assert row.patient_id == (src.get("PatientID") or None)
        assert row.prediction in row.probabilities or (row.indeterminate and row.probabilities)
        assert sum(row.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert row.path == root / row.study_uid / row.series_uid / f"{row.sop_uid}.dcm"
        assert stat.S_IMODE(row.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(row.path.parent.stat().st_mode) == 0o700
        assert row.seconds is not None and row.seconds > 0
    printed = out.decode()
    assert printed.count("worklist #") == len(uploaded)
    for ds in uploaded.values():  # no patient data on the console
        if ds.get("PatientID"):
            assert str(ds.PatientID) not in printed + err.decode()


def test_results_are_accepted_by_orthanc(
    orthanc_server: Orthanc,  # noqa: F811
    samples_dir: Path,
    test_classifier,
    tmp_path: Path,
) -> None:
    source = samples_dir / "dicom" / "rsna-cr-jpeg-baseline.dcm"
    files = make_results(source, test_classifier).write(tmp_path)
    outcome = send_files(_config(orthanc_server), _config(orthanc_server).node("pacs"), files)
    assert outcome.ok and outcome.completed == 2
    src = pydicom.dcmread(source, stop_before_pixels=True)
    for path in files:
        uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        found = orthanc_server.post_json(
            "/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": uid}, "Expand": True}
        )
        assert len(found) == 1
        tags = orthanc_server.get(f"/instances/{found[0]['ID']}/simplified-tags")
        assert tags["StudyInstanceUID"] == src.StudyInstanceUID
        assert tags["PatientID"] == src.PatientID


def test_node_sends_results_back_on_its_own(
    orthanc_server: Orthanc,  # noqa: F811
    samples_dir: Path,
    test_classifier,
) -> None:
    config = _config(orthanc_server, allowed_ae_titles=(NODE_AET,), auto_send="pacs")
    source = samples_dir / "dicom" / "nih-dx-uncompressed.dcm"
    src = pydicom.dcmread(source, stop_before_pixels=True)
    before = _series_of_study(orthanc_server, src.StudyInstanceUID)
    with StorageNode(config, test_classifier) as running:
        target = make_node("self", NODE_AET, "127.0.0.1", running.port)
        assert send_files(config, target, [source]).ok
        with Worklist() as worklist:
            _wait(lambda: (worklist.items(limit=1) or [None])[0].results is not None)
            row = worklist.items(limit=1)[0]
    assert row.results == "SR and heat map sent to pacs", row.results
    after = _series_of_study(orthanc_server, src.StudyInstanceUID)
    assert sorted(after - before) == ["OT", "SR"]


def _series_of_study(orthanc: Orthanc, study_uid: str) -> set[str]:
    """Modalities of the study's series in Orthanc."""
    query = {"Level": "Series", "Query": {"StudyInstanceUID": study_uid}, "Expand": True}
    return {s["MainDicomTags"].get("Modality", "") for s in orthanc.post_json("/tools/find", query)}


def test_unknown_calling_ae_and_address_are_refused(node: StorageNode, test_classifier) -> None:
    intruder = AE(ae_title="INTRUDER")
    intruder.add_requested_context(Verification)
    assoc = intruder.associate("127.0.0.1", node.port, ae_title=NODE_AET)
    assert assoc.is_rejected and not assoc.is_established
    wrong_called = AE(ae_title=ORTHANC_AET)
    wrong_called.add_requested_context(Verification)
    assoc = wrong_called.associate("127.0.0.1", node.port, ae_title="SOMEONE")
    assert assoc.is_rejected
    elsewhere = NodeConfig(
        ae_title=NODE_AET, port=0, allowed_ae_titles=(ORTHANC_AET,), allowed_hosts=("10.99.0.0/16",)
    )
    with StorageNode(elsewhere, None) as fenced:
        caller = AE(ae_title=ORTHANC_AET)
        caller.add_requested_context(Verification)
        assoc = caller.associate("127.0.0.1", fenced.port, ae_title=NODE_AET)
        assert not assoc.is_established
        assert fenced.stats.refused >= 1
    with pytest.raises(DicomNetError, match="rejected the association"):
        echo(NodeConfig(ae_title="INTRUDER"), make_node("n", NODE_AET, "127.0.0.1", node.port))


def test_malformed_objects_do_not_stop_the_node(
    node: StorageNode, samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # send files as they are, without decoding them first (pynetdicom's documented switch)
    monkeypatch.setattr(pynetdicom_config, "STORE_SEND_CHUNKED_DATASET", True)
    garbage = _file_with_body(tmp_path / "garbage.dcm", b"\x08\x00\x05\x00CS\xff\xff" * 64)
    traversal = tmp_path / "traversal.dcm"
    ds = pydicom.dcmread(samples_dir / "dicom" / "nih-dx-uncompressed.dcm")
    ds.StudyInstanceUID = "../../../../tmp/escape"
    ds.save_as(traversal)
    broken_pixels = tmp_path / "broken-pixels.dcm"
    ds = pydicom.dcmread(samples_dir / "dicom" / "nih-dx-uncompressed.dcm")
    ds.SOPInstanceUID = generate_uid()
    ds.PixelData = ds.PixelData[:1000]  # far shorter than rows x columns
    ds.save_as(broken_pixels)

    sender = AE(ae_title=ORTHANC_AET)
    sender.add_requested_context(SecondaryCaptureImageStorage, ExplicitVRLittleEndian)
    sender.add_requested_context(SecondaryCaptureImageStorage, "1.2.840.10008.1.2")
    sender.add_requested_context(Verification)
    assoc = sender.associate("127.0.0.1", node.port, ae_title=NODE_AET)
    assert assoc.is_established
    try:
        assert assoc.send_c_store(garbage).Status == 0xC210
        assert assoc.send_c_store(traversal).Status == 0xC210
        assert assoc.send_c_store(broken_pixels).Status == 0x0000  # stored, fails to classify
        assert assoc.send_c_echo().Status == 0x0000  # the same association still works
    finally:
        assoc.release()
    assert not any(Path("/tmp/escape").parent.glob("escape*"))
    assert node.wait_idle(60)
    with Worklist() as worklist:
        row = worklist.items(limit=1)[0]
    assert row.status == "failed" and row.error
    good = samples_dir / "dicom" / "rsna-cr-jpeg-baseline.dcm"
    as_pacs = NodeConfig(ae_title=ORTHANC_AET)
    assert send_files(as_pacs, make_node("me", NODE_AET, "127.0.0.1", node.port), [good]).ok
    assert node.wait_idle(60)
    with Worklist() as worklist:
        assert worklist.items(limit=1)[0].status == CLASSIFIED
        assert worklist.count(SKIPPED) == 0


def _file_with_body(path: Path, body: bytes) -> Path:
    """A file with a valid preamble and file meta, then bytes that are not a dataset."""
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    with path.open("ab") as fh:
        fh.write(body)
    return path


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a cert")
def test_tls_association(node: StorageNode, test_classifier, tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    config = NodeConfig(ae_title=NODE_AET, port=0, allowed_ae_titles=(NODE_AET,), tls=tls)
    with StorageNode(config, None) as secure:
        over_tls = make_node("secure", NODE_AET, "127.0.0.1", secure.port, tls=True)
        assert echo(config, over_tls) < 10
        in_clear = make_node("clear", NODE_AET, "127.0.0.1", secure.port, tls=False)
        with pytest.raises(DicomNetError):
            echo(config, in_clear)


def test_classify_dicom_out_and_send(
    orthanc_server: Orthanc,  # noqa: F811
    samples_dir: Path,
    test_model_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from xraydesk.cli import main

    _config(orthanc_server).save()
    source = samples_dir / "dicom" / "siim-cr-jpeg-baseline.dcm"
    png = samples_dir / "fullres" / "nih-00000001_000.png"
    out = tmp_path / "results"
    argv = ["classify", str(source), str(png), "--dicom-out", str(out), "--send", "pacs"]
    code = main([*argv, "--model", str(test_model_path), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "1 classified file(s) are not DICOM" in err and "2 object(s) sent to pacs" in err
    written = sorted(out.iterdir())
    assert len(written) == 2
    kinds = set()
    for path in written:
        ds = pydicom.dcmread(path)
        kinds.add(ds.Modality)
        found = orthanc_server.post_json(
            "/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": ds.SOPInstanceUID}}
        )
        assert len(found) == 1
    assert kinds == {"SR", "OT"}
