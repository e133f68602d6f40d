"""``xraydesk listen --send-results`` against Orthanc with hostile headers (issue 26, item 2).

Objects whose headers hold non-conformant values (and one whose Patient ID is invalid,
so its results are refused) arrive before good ones: every object is stored and
classified, the results of all but the refused one reach the PACS, the refused one's
worklist row says why, and neither the node's console nor its log file shows a patient
value.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation

from tests.hostile_headers import FAKE_ID, assert_no_secrets, hostile_dicom
from tests.orthanc import ORTHANC_AET, Orthanc, orthanc_server  # noqa: F401 - fixture
from xraydesk import paths
from xraydesk.dicomnet import NodeConfig, Worklist, make_node

NODE_AET = "XRAYDESK"
BAD_HEADERS = (
    {
        "PatientSex": "male",
        "StudyDate": "2024-01-05",
        "StudyTime": "12:30:00",
        "PatientBirthDate": "1901-02-03",
        "PatientAge": "81",
    },
    {"PatientBirthDate": "03/02/1901", "PatientName": "Quixotezz^" + "H" * 70},
    {"PatientBirthDate": "1901", "AccessionNumber": "ACC-HOST-42" * 3},
    {"PatientID": FAKE_ID + "\x01"},  # refused: results would land in another patient
)


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def _modalities_of_study(orthanc: Orthanc, study_uid: str) -> list[str]:
    query = {"Level": "Series", "Query": {"StudyInstanceUID": study_uid}, "Expand": True}
    found = orthanc.post_json("/tools/find", query)
    return sorted(s["MainDicomTags"].get("Modality", "") for s in found)


def test_node_sends_results_past_hostile_headers(
    orthanc_server: Orthanc,  # noqa: F811
    test_model_path: Path,
    tmp_path: Path,
) -> None:
    pacs = make_node("pacs", ORTHANC_AET, "127.0.0.1", orthanc_server.dicom_port)
    NodeConfig(ae_title=NODE_AET, port=0, nodes={"pacs": pacs}).save()
    files = [
        hostile_dicom(tmp_path / f"bad-{n}.dcm", changes, seed=n)
        for n, changes in enumerate(BAD_HEADERS)
    ]
    files += [hostile_dicom(tmp_path / f"good-{n}.dcm", {}, seed=10 + n) for n in range(2)]
    studies = [str(pydicom.dcmread(f).StudyInstanceUID) for f in files]

    env = {**os.environ, "XRAYDESK_DATA_DIR": str(paths.data_dir())}
    cmd = [sys.executable, "-m", "xraydesk", "listen", "--port", "0", "--allow-ae", ORTHANC_AET]
    cmd += ["--send-results", "pacs", "--model", str(test_model_path), "--device", "cpu"]
    listen = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert listen.stderr is not None
        line = listen.stderr.readline().decode()
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+) as XRAYDESK", line).group(1))
        sender = AE(ae_title=ORTHANC_AET)
        sender.add_requested_context(DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian)
        assoc = sender.associate("127.0.0.1", port, ae_title=NODE_AET)
        assert assoc.is_established
        try:
            for path in files:  # in this order: the bad objects first
                assert assoc.send_c_store(path).Status == 0x0000
        finally:
            assoc.release()
        with Worklist() as worklist:
            _wait(lambda: sum(r.results is not None for r in worklist.items()) == 6, 240)
            rows = {row.study_uid: row for row in worklist.items()}
        assert listen.poll() is None
    finally:
        listen.terminate()
        out, err = listen.communicate(timeout=60)
    console = out.decode() + err.decode()
    assert listen.returncode == 0, console[-2000:]
    assert "Traceback" not in console
    assert_no_secrets(console)
    log_file = paths.data_dir() / "logs" / "xraydesk.log"  # the node's own log file
    assert "listen" in log_file.read_text()
    assert_no_secrets(log_file.read_text())
    refused = studies[3]
    for study in studies:
        row = rows[study]
        assert row.status == "classified", (row.status, row.error)
        if study == refused:
            assert "Patient ID is not valid DICOM" in row.results
            assert _modalities_of_study(orthanc_server, study) == []
        else:
            assert row.results == "SR and heat map sent to pacs", row.results
            assert _modalities_of_study(orthanc_server, study) == ["OT", "SR"]
    for study in studies[:3]:  # the SR names what it did not copy as it was
        assert any(w.startswith("Source header values") for w in rows[study].warnings)
