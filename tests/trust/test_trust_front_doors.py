"""Issue 26 #6: the population warning at every front door, not only in the viewer.

``PatientAge 068Y`` with ``--model pediatric-pneumonia --json`` gave ``warnings: []``:
the CLI (one file, the table and JSON; a folder run's JSON, CSV and SQLite rows), the
DICOM node's worklist and the SR it sends never said the patient was outside the ages
the model card states. Every one of them now reports the one verdict
(``xraydesk.trust.verdict``). The films are those of ``test_trust_verdict.py``: one real
radiograph, differing only in PatientAge.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.trust.age_films import AGES, MODELS, OUTSIDE, make_films
from xraydesk.batch.database import ResultStore, default_db_path
from xraydesk.classifier import Classifier
from xraydesk.cli import main
from xraydesk.trust.codes import OUTSIDE_POPULATION

PEDIATRIC = "pediatric-pneumonia"
POPULATION_LINE = f"Warning ({OUTSIDE_POPULATION}): "


@pytest.fixture
def films(tmp_path: Path, chest_pixels: np.ndarray) -> dict[str, Path]:
    return make_films(tmp_path / "films", chest_pixels)


def _flagged(rows: list[dict], key: str = "warnings") -> set[str]:
    """The ages (from the file names ``age-068Y.dcm``) whose row carries the warning."""
    return {Path(r["path"]).stem.removeprefix("age-") for r in rows if OUTSIDE_POPULATION in r[key]}


def _sr_comments(path: Path) -> list[str]:
    sr = pydicom.dcmread(path)
    return [
        item.TextValue
        for item in sr.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeMeaning == "Comment"
    ]


def _sr_source(path: Path) -> str:
    """The SOP Instance UID of the image an SR reports on."""
    for item in pydicom.dcmread(path).ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeMeaning == "Source of Measurement":
            return str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
    raise AssertionError(f"{path}: no source image referenced")


def _ages_by_uid(films: dict[str, Path]) -> dict[str, str]:
    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): a for a, p in films.items()
    }


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_one_file_json_and_table_say_outside_population(films, capsys):
    """The issue's own case, then every age through the table (files, not a folder)."""
    assert main(["classify", str(films["068Y"]), "--model", PEDIATRIC, "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["error"] is None and OUTSIDE_POPULATION in row["warnings"]
    (message,) = [m["message"] for m in row["warning_messages"] if m["code"] == OUTSIDE_POPULATION]
    assert "68 years" in message and "1-5 years" in message

    assert main(["classify", *(str(films[a]) for a in AGES), "--model", PEDIATRIC]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split("\t")[-1] == "WARNINGS"
    cells = {Path(line.split("\t")[0]).stem.removeprefix("age-"): line for line in lines}
    assert set(cells) == set(AGES)
    flagged = {age for age, line in cells.items() if OUTSIDE_POPULATION in line.split("\t")[-1]}
    assert flagged == OUTSIDE[PEDIATRIC]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_cli_folder_run_json_csv_and_database_rows(model, films, tmp_path, capsys):
    out_csv = tmp_path / "rows.csv"
    folder = films["068Y"].parent
    assert main(["classify", str(folder), "--model", model, "--json", "--csv", str(out_csv)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(AGES) and all(r["error"] is None for r in rows)
    assert _flagged(rows) == OUTSIDE[model]

    with out_csv.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    assert _flagged(records) == OUTSIDE[model]

    with ResultStore(default_db_path()) as store:
        (run,) = store.runs()
        stored = [
            {"path": str(r.path), "warnings": r.warning_codes} for r in store.iter_rows(run.id)
        ]
    assert _flagged(stored) == OUTSIDE[model]


def test_cli_dicom_out_sr_carries_the_population_warning(films, tmp_path, capsys):
    out = tmp_path / "dicom-out"
    args = ["classify", str(films["068Y"]), str(films["003Y"]), "--model", PEDIATRIC]
    assert main([*args, "--dicom-out", str(out)]) == 0
    capsys.readouterr()
    ages = _ages_by_uid(films)
    by_age: dict[str, list[str]] = {}
    for path in out.glob("*.dcm"):
        if pydicom.dcmread(path, stop_before_pixels=True).Modality == "SR":
            by_age[ages[_sr_source(path)]] = _sr_comments(path)
    assert set(by_age) == {"068Y", "003Y"}
    assert any(c.startswith(POPULATION_LINE) and "68 years" in c for c in by_age["068Y"])
    assert not any(c.startswith(POPULATION_LINE) for c in by_age["003Y"])


# -- the DICOM node --------------------------------------------------------------------------


def test_node_worklist_and_its_sr_say_outside_population(films, tmp_path):
    """Films C-STOREd to a running node on loopback: each worklist row carries the verdict's
    warnings; the SR made for a row (as the node's sender makes it, from the row's
    probabilities) carries the population warning too."""
    from xraydesk.dicomnet import NodeConfig, StorageNode, Worklist, make_node, send_files
    from xraydesk.dicomnet.result_objects import make_results

    classifier = Classifier.load(MODELS[PEDIATRIC], device="cpu")
    config = NodeConfig(ae_title="XRAYDESK", port=0, allowed_ae_titles=("XRAYDESK",))
    with StorageNode(config, classifier) as node:
        target = make_node("self", "XRAYDESK", "127.0.0.1", node.port)
        assert send_files(config, target, list(films.values())).ok
        with Worklist() as worklist:
            deadline = time.monotonic() + 300
            while sum(i.status == "classified" for i in worklist.items()) < len(AGES):
                assert time.monotonic() < deadline, "the node did not classify the films"
                time.sleep(0.2)
            items = worklist.items()
    ages = _ages_by_uid(films)
    by_age = {ages[i.sop_uid]: i for i in items}
    flagged = {
        a for a, i in by_age.items() if any(w.startswith(POPULATION_LINE) for w in i.warnings)
    }
    assert flagged == OUTSIDE[PEDIATRIC]

    adult, child = by_age["068Y"], by_age["003Y"]
    assert adult.path is not None and child.path is not None
    sr = make_results(adult.path, classifier, adult.probabilities)
    (sr_path, _) = sr.write(tmp_path)
    assert any(c.startswith(POPULATION_LINE) and "68 years" in c for c in _sr_comments(sr_path))
    assert not any(
        w.startswith(POPULATION_LINE)
        for w in make_results(child.path, classifier, child.probabilities).warnings
    )
