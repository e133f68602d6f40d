"""A withheld answer says what the model is sure of: its card's class groups.

The paediatric model withheld 58 % of its test films as indeterminate, and 0.998 of the
withheld films whose bacterial and viral probabilities together passed its rule were
pneumonia: "the model is not sure" was true of the kind, not of the finding. The card's
``class_groups`` (``model.class_groups``) name such findings; the rule that withheld the
class is asked again of the grouped probabilities (``trust.group_answer``), and the
indeterminate warning names the finding. The class stays withheld everywhere.

Cases: the card's groups checked when read (each error names the file), kept in the
integrity hash; a table of verdicts on the small test model (the card's rule, top and
margin, and a site profile's); then the real paediatric model on a real Kermany test film
at the command line (table and JSON) and in the DICOM SR it writes.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.paths import MODELS_DIR
from tests.trust.grouped_film import FINDS, PEDIATRIC, pediatric_grouped_film
from xraydesk.classifier import Classifier
from xraydesk.cli import main
from xraydesk.errors import ModelError
from xraydesk.model.card import ModelCard
from xraydesk.model.class_groups import ClassGroup, collapsed, groups_from_list, inherited_groups
from xraydesk.model.operating_rule import MARGIN, VALIDATION_SPLIT, OperatingRule
from xraydesk.model.site_profile import ProfileState, SiteProfile
from xraydesk.trust.codes import INDETERMINATE
from xraydesk.trust.verdict import decide

OPACITY = ClassGroup("opacity", "Lung opacity", ("pneumonia", "covid19"))
IDS = ["normal", "pneumonia", "covid19"]


# -- the card's groups ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        ({"id": "x"}, "must be a list of groups"),
        ([{"id": "x", "name": "X"}], "needs an id, a name and its classes"),
        ([{"id": "x", "name": "X", "classes": ["pneumonia", "tumour"]}], "tumour, not a class"),
        ([{"id": "x", "name": "X", "classes": ["pneumonia"]}], "two or more"),
        ([{"id": "x", "name": "X", "classes": IDS}], "not all of them"),
        ([{"id": "", "name": "X", "classes": IDS[1:]}], "an id and a display name"),
        ([{"id": None, "name": "X", "classes": IDS[1:]}], "an id and a display name"),
        (
            [
                {"id": "a", "name": "A", "classes": ["normal", "pneumonia"]},
                {"id": "b", "name": "B", "classes": ["pneumonia", "covid19"]},
            ],
            "shares a class",
        ),
    ],
)
def test_a_group_that_means_nothing_is_refused_naming_the_card(data, cause) -> None:
    with pytest.raises(ModelError, match=cause) as err:
        groups_from_list(data, IDS, "cards/x.json")
    assert str(err.value).startswith("cards/x.json: ")


def test_groups_round_trip_and_are_covered_by_the_integrity_hash(test_model_path, tmp_path):
    card = replace(ModelCard.read(test_model_path), class_groups=(OPACITY,))
    card.weights_file = test_model_path.with_suffix(".safetensors").name
    data = card.to_dict()
    assert "class_groups" in data["integrity"]["covers"]
    assert ModelCard.from_dict(data).class_groups == (OPACITY,)
    edited = json.loads(json.dumps(data))
    edited["class_groups"][0]["classes"] = ["normal", "pneumonia"]  # "normal or pneumonia"
    with pytest.raises(ModelError, match=r"class groups.*integrity hash mismatch"):
        ModelCard.from_dict(edited)  # an edit, refused as such
    # a card without groups writes none, so cards made before them keep their hash
    assert "class_groups" not in ModelCard.read(test_model_path).to_dict()


def test_collapsed_sums_a_groups_classes_in_class_order() -> None:
    values, names = collapsed(np.array([0.2, 0.5, 0.3]), IDS, (OPACITY,))
    assert names == ["normal", "opacity"] and np.allclose(values, [0.2, 0.8])


def test_a_model_trained_from_a_base_keeps_the_groups_it_can_mean() -> None:
    assert inherited_groups((OPACITY,), IDS) == (OPACITY,)
    assert inherited_groups((OPACITY,), ["normal", "pneumonia"]) == ()  # covid19 gone


def test_the_bundled_pediatric_card_groups_bacterial_and_viral() -> None:
    card = ModelCard.read(MODELS_DIR / f"{PEDIATRIC}.json")
    (group,) = card.class_groups
    assert group.name == "Pneumonia" and set(group.classes) == {"bacterial", "viral"}
    test = card.metrics["class_groups"]["test_split"]["pneumonia"]
    assert test["named"] > 0 and test["in_group"] >= 0.95  # the evidence the card states


# -- the verdict ------------------------------------------------------------------------------

TOP = OperatingRule(0.6, pools=("a",), n=100)
MARGIN_RULE = OperatingRule(0.3, measure=MARGIN, chosen_from=VALIDATION_SPLIT, pools=("a",))

# rule, site threshold (None: no profile), probabilities, expected class, finding named
CASES = [
    ("top-withheld-group-passes", TOP, None, [0.10, 0.45, 0.45], None, True),
    ("top-withheld-group-too-weak", TOP, None, [0.45, 0.30, 0.25], None, False),
    ("top-withheld-normal-on-top", TOP, None, [0.50, 0.30, 0.20], None, False),
    ("top-answered-no-warning", TOP, None, [0.10, 0.80, 0.10], "pneumonia", False),
    ("margin-withheld-group-passes", MARGIN_RULE, None, [0.20, 0.42, 0.38], None, True),
    ("margin-withheld-group-too-close", MARGIN_RULE, None, [0.40, 0.32, 0.28], None, False),
    ("site-withheld-group-passes", None, 0.7, [0.05, 0.50, 0.45], None, True),
    ("site-withheld-group-too-weak", None, 0.7, [0.35, 0.40, 0.25], None, False),
]


def _classifier(base: Classifier, rule: OperatingRule | None, site: float | None) -> Classifier:
    clf = copy.copy(base)
    clf.card = replace(base.card, operating_rule=rule, class_groups=(OPACITY,))
    if site is None:
        clf.site_profile = ProfileState()
    else:
        thresholds = {cid: 0.99 for cid in clf.card.class_ids}
        profile = SiteProfile(
            clf.card.name, clf.card.weights_sha256, clf.card.temperature, site, thresholds,
            0.9, {"n": 40},
        )  # fmt: skip
        clf.site_profile = ProfileState(profile)
    return clf


@pytest.mark.parametrize(
    ("rule", "site", "probs", "expected", "named"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_verdict_names_the_finding_only_when_the_rule_accepts_the_group(
    test_classifier, rule, site, probs, expected, named
) -> None:
    verdict = decide(_classifier(test_classifier, rule, site), np.array(probs))
    assert verdict.predicted == expected
    messages = [w.message for w in verdict.warnings if w.code == INDETERMINATE]
    if expected is not None:
        assert not messages
        return
    assert verdict.is_indeterminate  # the class stays withheld, finding or not
    (message,) = messages
    assert ("The model finds Lung opacity" in message) is named
    assert verdict.finding == ("opacity" if named else None)  # JSON, CSV, SQLite, tables
    if named:
        total = probs[1] + probs[2]
        assert f"{total:.1%}" in message and "Pneumonia and COVID-19 together" in message


# -- the real paediatric model at the front doors ---------------------------------------------


@pytest.fixture(scope="module")
def grouped_film(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pediatric_grouped_film(shared_data, tmp_path_factory.mktemp("grouped"))


@pytest.mark.data
def test_cli_json_keeps_the_class_withheld_and_names_the_finding(grouped_film, tmp_path, capsys):
    assert main(["classify", str(grouped_film), "--model", PEDIATRIC, "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["prediction"] is None and row["indeterminate"] is True
    (message,) = [m["message"] for m in row["warning_messages"] if m["code"] == INDETERMINATE]
    assert FINDS in message and "Bacterial pneumonia and Viral pneumonia together" in message

    assert row["finding"] == "pneumonia"

    csv_path = tmp_path / "rows.csv"
    assert main(["classify", str(grouped_film), "--model", PEDIATRIC, "--csv", str(csv_path)]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith(str(grouped_film))]
    assert "INDETERMINATE (FINDS PNEUMONIA)" in line  # no class named, the finding is
    with csv_path.open(newline="") as handle:
        (record,) = list(csv.DictReader(handle))
    assert record["prediction"] == "" and record["finding"] == "pneumonia"


@pytest.mark.data
def test_a_folder_run_stores_the_finding_and_reuses_it(grouped_film, tmp_path, capsys):
    """The results database keeps the finding: a second run over the folder reuses the
    row (same content, same model) and still names it; the GUI's table reads it back."""
    from xraydesk.batch.database import ResultStore

    folder = tmp_path / "films"
    folder.mkdir()
    shutil.copy(grouped_film, folder / "film.dcm")
    for _ in range(2):
        assert main(["classify", str(folder), "--model", PEDIATRIC, "--json"]) == 0
        (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert row["finding"] == "pneumonia" and row["indeterminate"] is True
    assert row["reused"] is True
    store = ResultStore()
    try:
        stored = [r for run in store.runs() for r in store.iter_rows(run.id)]
    finally:
        store.close()
    assert [r.finding for r in stored] == ["pneumonia", "pneumonia"]
    assert stored[0].outcome_words == "Indeterminate (finds pneumonia)"


@pytest.mark.data
def test_the_sr_sent_for_it_says_indeterminate_and_the_finding(grouped_film, tmp_path, capsys):
    out = tmp_path / "sr"
    assert main(["classify", str(grouped_film), "--model", PEDIATRIC, "--dicom-out", str(out)]) == 0
    capsys.readouterr()
    texts = [
        str(getattr(item, "TextValue", ""))
        for sr in sorted(out.rglob("*.dcm"))
        for item in getattr(pydicom.dcmread(sr), "ContentSequence", [])
    ]
    assert any(FINDS in t for t in texts), texts


@pytest.mark.data
def test_the_dicom_node_worklist_keeps_the_finding(grouped_film):
    """Real network: the film C-STOREd to a node running the paediatric model lands in
    the worklist indeterminate, with its finding (what ``pacs worklist`` and the PACS
    panel show)."""
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE

    from xraydesk.dicomnet import NodeConfig, StorageNode, Worklist
    from xraydesk.dicomnet.worklist import CLASSIFIED

    sop_class = pydicom.dcmread(grouped_film, stop_before_pixels=True).SOPClassUID
    sender = AE(ae_title="SENDER")
    sender.add_requested_context(sop_class, [ExplicitVRLittleEndian])
    classifier = Classifier.load(MODELS_DIR / f"{PEDIATRIC}.json", device="cpu")
    config = NodeConfig(ae_title="XRAYDESK", port=0, allowed_ae_titles=("SENDER",))
    with StorageNode(config, classifier) as node:
        assoc = sender.associate("127.0.0.1", node.port, ae_title="XRAYDESK")
        assert assoc.is_established
        try:
            assert assoc.send_c_store(grouped_film).Status == 0x0000
        finally:
            assoc.release()
        assert node.wait_idle(120)
    with Worklist() as worklist:
        (item,) = worklist.items()
    assert item.status == CLASSIFIED and item.indeterminate and item.prediction is None
    assert item.finding == "pneumonia"


def test_a_site_profile_judged_in_validation_records_its_own_finding(test_classifier):
    """``validate``'s re-judging under a site profile (``with_profile``) sets the finding
    as the verdict does: the profile's rule decides anew, so a finding the card's rule
    recorded goes when the profile answers, and comes back when the profile withholds."""
    from xraydesk.batch.rows import ResultRow
    from xraydesk.validate.labels import LabelledImage
    from xraydesk.validate.profile_fit import with_profile
    from xraydesk.validate.site_run import SiteImage

    clf = _classifier(test_classifier, TOP, None)
    verdict = decide(clf, np.array([0.10, 0.45, 0.45]))
    row = ResultRow(path=Path("a.png"), model=clf.card.label)
    row.take_verdict(verdict, clf.class_ids)
    assert row.finding == "opacity"
    image = SiteImage(LabelledImage(Path("a.png"), "a.png", "covid19", "covid19"), row)
    thresholds = {cid: 0.99 for cid in clf.card.class_ids}
    for below, finding in ((0.0, None), (0.7, "opacity")):
        profile = SiteProfile(
            clf.card.name, clf.card.weights_sha256, clf.card.temperature, below, thresholds,
            0.9, {"n": 40},
        )  # fmt: skip
        (judged,) = with_profile(profile, clf.card, [image])
        assert judged.row.finding == finding
        assert judged.row.indeterminate is (finding is not None)
