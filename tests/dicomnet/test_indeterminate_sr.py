"""Issue 27 #1: an indeterminate result in the DICOM outputs and the node's worklist.

The SR of a result the one verdict withholds says "Indeterminate" as its finding, never
the withheld class, and still passes dciodvfy; its Secondary Capture carries no heat map
(grey pixels, a caption saying Indeterminate). The worklist stores the flag (a table made
before the column gains it), and ``xraydesk pacs worklist`` prints INDETERMINATE.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.dicomnet.test_dicom_outputs_hostile import dciodvfy_errors, require_dciodvfy
from xraydesk.batch.database import default_db_path
from xraydesk.cli import main
from xraydesk.cli.classify import INDETERMINATE
from xraydesk.dicomnet.result_objects import INDETERMINATE_COMMENT, make_results
from xraydesk.dicomnet.worklist import CLASSIFIED, TABLE, WorkItem, Worklist
from xraydesk.trust.codes import ROTATED, ResultWarning

TURNED = [ResultWarning(ROTATED, "the film is on its side")]


def _finding(sr: pydicom.Dataset) -> pydicom.Dataset:
    (item,) = [
        i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == "Finding"
    ]
    return item.ConceptCodeSequence[0]


def _comments(sr: pydicom.Dataset) -> list[str]:
    return [
        str(i.TextValue)
        for i in sr.ContentSequence
        if i.ConceptNameCodeSequence[0].CodeMeaning == "Comment"
    ]


@pytest.mark.data
def test_indeterminate_sr_names_no_class_and_passes_dciodvfy(
    samples_dir: Path, test_classifier, tmp_path: Path
) -> None:
    exe = require_dciodvfy()
    source = samples_dir / "dicom" / "nih-dx-uncompressed.dcm"
    probabilities = {"normal": 0.1, "pneumonia": 0.2, "covid19": 0.7}
    withheld = make_results(source, test_classifier, probabilities, TURNED, indeterminate=True)
    named = make_results(source, test_classifier, probabilities, TURNED, indeterminate=False)
    assert withheld.prediction is None and named.prediction == "covid19"

    paths = withheld.write(tmp_path)
    sr, sc = (pydicom.dcmread(p) for p in paths)
    finding = _finding(sr)
    assert (finding.CodeValue, finding.CodeMeaning) == ("INDETERMINATE", "Indeterminate")
    comments = _comments(sr)
    assert INDETERMINATE_COMMENT in comments
    assert any(c.startswith(f"Warning ({ROTATED}): ") for c in comments)
    assert not any("COVID" in c for c in comments)  # the withheld class is not named
    assert _finding(named.sr).CodeValue == "covid19"
    assert INDETERMINATE_COMMENT not in _comments(named.sr)

    # no heat map: the capture is grey (burnt-in text is white on black), the named one is not
    rgb = sc.pixel_array.astype(np.int16)
    assert np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2])
    coloured = named.sc.pixel_array.astype(np.int16)
    assert np.abs(coloured[..., 0] - coloured[..., 2]).max() > 50
    for path in paths:
        assert dciodvfy_errors(exe, path) == [], path


def test_worklist_stores_the_flag_and_an_older_table_gains_the_column(tmp_path, capsys):
    db = default_db_path()
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:  # the table as an older XRayDesk made it
        conn.execute(
            f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT"
            " NULL, calling_ae TEXT, study_uid TEXT, series_uid TEXT, sop_uid TEXT NOT NULL"
            " UNIQUE, sop_class_uid TEXT, modality TEXT, body_part TEXT, study_date TEXT,"
            " study_description TEXT, accession TEXT, patient_id TEXT, patient_name TEXT,"
            " path TEXT, status TEXT NOT NULL, model TEXT, prediction TEXT, probabilities TEXT,"
            " warnings TEXT, error TEXT, classified_at TEXT, seconds REAL, results TEXT)"
        )
        conn.execute(
            f"INSERT INTO {TABLE} (received_at, sop_uid, status, prediction, probabilities)"
            " VALUES ('2026-01-01T00:00:00', '1.2.3.1', 'classified', 'normal', ?)",
            (json.dumps({"normal": 0.9, "pneumonia": 0.05, "covid19": 0.05}),),
        )
    probs = {"normal": 0.2, "pneumonia": 0.3, "covid19": 0.5}
    with Worklist() as worklist:
        old = worklist.items()[0]
        assert old.prediction == "normal" and not old.indeterminate
        row_id = worklist.add(WorkItem(sop_uid="1.2.3.2", modality="DX"))
        worklist.set_result(
            row_id,
            status=CLASSIFIED,
            model="test-3class 0.0-test",
            probabilities=probs,
            warnings=[w.line for w in TURNED],
            indeterminate=True,
        )
        item = worklist.get(row_id)
    assert item is not None and item.indeterminate and item.prediction is None
    assert item.probabilities == probs

    assert main(["pacs", "worklist"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (line,) = [x for x in lines if x.startswith(f"#{row_id}\t")]
    assert line.split("\t")[-1] == INDETERMINATE
    assert main(["pacs", "worklist", "--json"]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[row_id]["indeterminate"] is True and rows[row_id]["prediction"] is None
    assert rows[1]["indeterminate"] is False and rows[1]["prediction"] == "normal"
    assert rows[row_id]["finding"] is None and rows[1]["finding"] is None


def test_the_worklist_keeps_what_an_indeterminate_answer_finds(capsys):
    """The paediatric model's withheld bacterial-or-viral answer that still finds
    pneumonia: the worklist stores the finding and ``pacs worklist`` prints it as
    ``classify`` does (INDETERMINATE (FINDS PNEUMONIA))."""
    with Worklist() as worklist:
        row_id = worklist.add(WorkItem(sop_uid="1.2.3.9", modality="DX"))
        worklist.set_result(
            row_id,
            status=CLASSIFIED,
            model="pediatric-pneumonia 1.0",
            probabilities={"normal": 0.01, "bacterial": 0.6, "viral": 0.39},
            indeterminate=True,
            finding="pneumonia",
        )
        assert worklist.get(row_id).finding == "pneumonia"
    assert main(["pacs", "worklist"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith(f"#{row_id}\t")]
    assert line.split("\t")[-1] == "INDETERMINATE (FINDS PNEUMONIA)"
    assert main(["pacs", "worklist", "--json"]) == 0
    (row,) = map(json.loads, capsys.readouterr().out.splitlines())
    assert row["finding"] == "pneumonia" and row["prediction"] is None
