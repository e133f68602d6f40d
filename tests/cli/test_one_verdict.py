"""Issue 27 #6: one verdict for a film, whichever front door reads it.

The same films go through the viewer's path (``TrustCheck``, no Qt), ``xraydesk
classify`` (JSON, CSV, the table and the SR of ``--dicom-out``), the batch engine and
the DICOM node's result path (``StorageNode.classify_group`` into the worklist, then the
SR the node sends, made as ``send_results`` makes it); Spark is in
``tests/integration/test_spark_verdict.py``. Each must give the same class, the same
indeterminate flag and withheld class, and the same warning codes.

The films: a real CR chest film from ``samples/``, and that film turned 90 degrees and
written as a new DICOM: the input gate flags it ``rotated``, and chest-3class reads it
"COVID-19 99.9 %", the issue's case of a class the CLI printed while the viewer withheld
it. Once with the bundled card as it is (its own operating rule answers the real film),
once with a card whose operating rule withholds every answer, once with a site profile
whose rule does.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.dicom_factory import make_dicom
from xraydesk.batch.run import classify_paths
from xraydesk.classifier import Classifier
from xraydesk.cli import main
from xraydesk.cli.classify import INDETERMINATE
from xraydesk.imaging import load_xray
from xraydesk.model.card import ModelCard
from xraydesk.model.operating_rule import OperatingRule
from xraydesk.model.site_profile import SiteProfile, save_profile
from xraydesk.trust import TrustCheck
from xraydesk.trust.codes import ROTATED

MODEL = "chest-3class"
CARD = Path(__file__).resolve().parents[2] / "models" / f"{MODEL}.json"


@dataclass(frozen=True)
class Outcome:
    """What a front door says about one film: class, indeterminate, withheld class, codes."""

    prediction: str | None
    indeterminate: bool
    withheld: str | None
    codes: tuple[str, ...]


@pytest.fixture(scope="module")
def films(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    real = samples_dir / "dicom" / "siim-cr-jpeg-baseline.dcm"
    pixels = np.round(load_xray(real).render() * 255).astype(np.uint8)
    turned = tmp_path_factory.mktemp("turned") / "turned.dcm"
    make_dicom(turned, np.ascontiguousarray(np.rot90(pixels)))
    return {"real": real, "turned": turned}


def _adopt_rule(card: ModelCard) -> None:
    """A site profile whose operating rule withholds every answer (T = 20: flat)."""
    thresholds = {cid: 0.5 for cid in card.class_ids}
    save_profile(
        SiteProfile(card.name, card.weights_sha256, 20.0, 0.9, thresholds, 0.9, {"n": 5}), card
    )


def _strict_card(folder: Path) -> Path:
    """chest-3class with an operating rule no answer meets (top probability 0.9999; the
    turned film reads COVID-19 99.90 %)."""
    card = ModelCard.read(CARD)
    folder.mkdir()
    (folder / card.weights_file).symlink_to(card.weights_path)
    strict = replace(card, operating_rule=OperatingRule(0.9999, pools=("test",), n=1))
    strict.write(folder / CARD.name)
    return folder / CARD.name


def _uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def _codes_of_lines(lines: list[str]) -> tuple[str, ...]:
    """The codes of the node's warning lines ("Warning (code): message")."""
    return tuple(w[len("Warning (") : w.index(")")] for w in lines if w.startswith("Warning ("))


def _sr_finding(sr: pydicom.Dataset) -> tuple[str, str]:
    for item in sr.ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeMeaning == "Finding":
            code = item.ConceptCodeSequence[0]
            return str(code.CodeValue), str(code.CodeMeaning)
    raise AssertionError("the SR has no finding")


def _sr_source(sr: pydicom.Dataset) -> str:
    for item in sr.ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeMeaning == "Source of Measurement":
            return str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
    raise AssertionError("the SR references no image")


def _expected_finding(outcome: Outcome) -> str:
    return "INDETERMINATE" if outcome.indeterminate else str(outcome.prediction)


@pytest.mark.parametrize("rule", ["card", "card-rule", "site-profile"])
def test_every_front_door_gives_the_same_verdict(rule, films, tmp_path, capsys):
    card_path = _strict_card(tmp_path / "strict") if rule == "card-rule" else CARD
    card = ModelCard.read(card_path)
    if rule == "site-profile":
        _adopt_rule(card)
    classifier = Classifier.load(card, device="cpu")
    paths = [films["real"], films["turned"]]

    # the viewer's path
    check = TrustCheck.of(classifier)
    viewer: dict[str, Outcome] = {}
    for name, path in films.items():
        result = check.classify(load_xray(path))
        verdict = result.verdict
        assert verdict is not None
        withheld = verdict.indeterminate.predicted if verdict.is_indeterminate else None
        viewer[name] = Outcome(
            verdict.predicted, verdict.is_indeterminate, withheld, tuple(verdict.codes)
        )
        # the numbers the viewer hides behind "Show anyway" are a class the verdict withholds
        assert not result.gate_failed or verdict.is_indeterminate

    turned = viewer["turned"]
    assert ROTATED in turned.codes and turned.indeterminate and turned.prediction is None
    assert turned.withheld is not None  # kept, only under its own name
    if rule != "card":  # the card's or the site's rule withholds every answer
        assert all(o.indeterminate and "indeterminate" in o.codes for o in viewer.values())
    else:
        assert not viewer["real"].indeterminate and viewer["real"].prediction is not None

    # the batch engine (the CLI's folders, the GUI's batch panel, validate)
    batch = {
        name: Outcome(r.prediction, r.indeterminate, r.withheld_prediction, tuple(r.warning_codes))
        for name, r in zip(films, classify_paths(paths, classifier), strict=True)
    }
    assert batch == viewer

    # the CLI: JSON lines, the CSV file and the SR of --dicom-out in one run
    out_csv, out_dicom = tmp_path / "rows.csv", tmp_path / "dicom-out"
    args = ["classify", *map(str, paths), "--model", str(card_path), "--device", "cpu"]
    assert main([*args, "--json", "--csv", str(out_csv), "--dicom-out", str(out_dicom)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cli = {
        name: Outcome(
            r["prediction"], r["indeterminate"], r["withheld_prediction"], tuple(r["warnings"])
        )
        for name, r in zip(films, rows, strict=True)
    }
    assert cli == viewer
    with out_csv.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    from_csv = {
        name: Outcome(
            r["prediction"] or None,
            {"true": True, "false": False}[r["indeterminate"]],
            r["withheld_prediction"] or None,
            tuple(c for c in r["warnings"].split(";") if c),
        )
        for name, r in zip(films, records, strict=True)
    }
    assert from_csv == viewer
    uids = {_uid(path): name for name, path in films.items()}
    srs = [pydicom.dcmread(p) for p in out_dicom.glob("*.dcm")]
    findings = {uids[_sr_source(sr)]: _sr_finding(sr)[0] for sr in srs if sr.Modality == "SR"}
    assert findings == {name: _expected_finding(o) for name, o in viewer.items()}

    # the CLI's table: the PREDICTION cell says INDETERMINATE, never the withheld class
    assert main(args) == 0
    _, *lines = capsys.readouterr().out.splitlines()
    cells = {name: line.split("\t")[1] for name, line in zip(films, lines, strict=True)}
    for name, outcome in viewer.items():
        shown = INDETERMINATE if outcome.indeterminate else card.display_names[outcome.prediction]
        assert cells[name] == shown

    # the DICOM node: its classify step into the worklist, then the SR it sends
    node = _node_outcomes(classifier, films)
    assert {name: outcome for name, (outcome, _) in node.items()} == viewer
    assert {name: finding for name, (_, finding) in node.items()} == {
        name: _expected_finding(o) for name, o in viewer.items()
    }


def _node_outcomes(
    classifier: Classifier, films: dict[str, Path]
) -> dict[str, tuple[Outcome, str]]:
    """Each film as the node records it (``classify_group``, no network), and the finding
    of the SR made from that worklist row as the node's sender makes it."""
    from xraydesk.dicomnet import NodeConfig, StorageNode, Worklist
    from xraydesk.dicomnet.result_objects import make_results
    from xraydesk.dicomnet.worklist import WorkItem

    config = NodeConfig(ae_title="XRAYDESK", port=0, allowed_ae_titles=("XRAYDESK",))
    node = StorageNode(config, classifier)
    try:
        ids = {
            name: node.worklist.add(WorkItem(sop_uid=_uid(p), path=p)) for name, p in films.items()
        }
        node.classify_group([(ids[name], films[name], time.monotonic()) for name in films])
    finally:
        node.stop()
    found: dict[str, tuple[Outcome, str]] = {}
    with Worklist() as worklist:
        for name, row_id in ids.items():
            item = worklist.get(row_id)
            assert item is not None and item.path is not None and item.error is None
            withheld = None
            if item.indeterminate:
                probs = item.probabilities or {}
                withheld = max(probs, key=lambda c: probs[c])
            outcome = Outcome(
                item.prediction, item.indeterminate, withheld, _codes_of_lines(item.warnings)
            )
            sr = make_results(
                item.path, classifier, item.probabilities, indeterminate=item.indeterminate
            ).sr
            found[name] = (outcome, _sr_finding(sr)[0])
    return found
