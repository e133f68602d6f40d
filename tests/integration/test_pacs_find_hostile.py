"""``xraydesk pacs find`` against a real Orthanc holding a study whose patient values are
hostile: the table stays a table (no escape, no forged row) and no log line names the
patient. Moved from tests/dicomnet/test_dicomnet_hostile.py, as it starts Orthanc."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.dicomnet.hostile_patient import assert_no_identifier, hostile_patient
from tests.orthanc import ORTHANC_AET, Orthanc, free_port, orthanc_server  # noqa: F401 - fixture
from xraydesk.cli import main
from xraydesk.dicomnet import NodeConfig, make_node

NODE_AET = "XRAYDESK"


@pytest.mark.data
def test_find_prints_identifiers_escaped(
    orthanc_server: Orthanc,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    source = hostile_patient(tmp_path / "hostile.dcm")
    answer = orthanc_server.upload(source)
    assert answer["Status"] in ("Success", "AlreadyStored")
    orthanc_server.add_modality("xraydesk", NODE_AET, free_port())  # Orthanc answers known AEs
    pacs = make_node("pacs", ORTHANC_AET, "127.0.0.1", orthanc_server.dicom_port)
    NodeConfig(ae_title=NODE_AET, nodes={"pacs": pacs}).save()
    caplog.clear()
    assert main(["pacs", "find", "pacs", "--from", "2024-01-02", "--to", "20240102"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    ours = [line for line in out.splitlines() if "PWNED-ID-7731" in line]
    assert len(ours) == 1 and ours[0].count("\t") == 5
    assert_no_identifier(caplog)
