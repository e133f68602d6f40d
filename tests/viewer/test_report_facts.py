"""Issue 29 #3: what the report says, decided without Qt (viewer.report_facts)."""

from __future__ import annotations

from pathlib import Path

from xraydesk.imaging.xray import ImageMetadata, PatientInfo
from xraydesk.viewer.report_facts import (
    IDENTIFIERS_LEFT_OUT,
    NOT_FOR_DIAGNOSIS,
    age_text,
    legend_text,
    report_facts,
)

NAMES = {"normal": "Normal", "pneumonia": "Pneumonia"}
PROBS = {"normal": 0.92, "pneumonia": 0.08}
META = ImageMetadata(
    Path("a.dcm"), "DICOM", view_position="PA", study_date="20240315", age_years=68.0, sex="F"
)
PATIENT = PatientInfo(name="Doe^Jane", patient_id="P-0001", birth_date="19560101", accession="A77")


def _facts(**kwargs):
    args = dict(
        metadata=META,
        patient=PATIENT,
        probabilities=PROBS,
        predicted="normal",
        names=NAMES,
        limitations=["Children only."],
        model="m 1.0",
    )
    args.update(kwargs)
    return report_facts(**args)


def test_identifiers_are_named_and_formatted():
    rows = dict(_facts().identifiers)
    assert rows["Patient"] == "Doe, Jane" and rows["Patient ID"] == "P-0001"
    assert rows["Accession"] == "A77" and rows["Birth date"] == "1956-01-01"
    assert rows["Age"] == "68 years" and rows["Sex"] == "Female"
    assert rows["Study date"] == "2024-03-15" and rows["View"] == "PA"


def test_identifiers_can_be_left_out_and_the_report_says_so():
    facts = _facts(include_identity=False)
    labels = [label for label, _ in facts.identifiers]
    assert "Patient" not in labels and "Accession" not in labels and "Patient ID" not in labels
    assert "Age" in labels and "Study date" in labels  # needed for the reading
    assert facts.notes == (IDENTIFIERS_LEFT_OUT,)
    flat = " ".join(v for _, v in facts.identifiers)
    assert "Doe" not in flat and "P-0001" not in flat


def test_missing_values_read_not_recorded():
    rows = dict(
        _facts(patient=PatientInfo(), metadata=ImageMetadata(Path("x.png"), "PNG")).identifiers
    )
    assert rows["Patient"] == "not recorded" and rows["View"] == "not recorded"


def test_answer_and_withheld_answer():
    assert _facts().answer.text == "Normal 92.0%"
    withheld = _facts(withheld_reason="the image failed the input check").answer
    assert withheld.withheld and "Withheld" in withheld.text and "Normal" not in withheld.text
    assert "input check" in withheld.reason


def test_explained_class_is_stated_and_a_difference_is_called_out():
    same = _facts(explained_class="normal")
    assert same.explained == "The heat map shows what supports Normal."
    assert same.explained_differs == ""
    other = _facts(explained_class="pneumonia")
    assert other.explained == "The heat map shows what supports Pneumonia."
    assert "NOT the answer (Normal)" in other.explained_differs
    assert _facts().explained == ""  # no map shown, nothing claimed


def test_limitations_and_legend():
    assert _facts().limitations == ("Children only.",)
    lines = legend_text("Pneumonia", "chest-3class 1.0")
    assert lines == (
        "Heat map: what supports Pneumonia",
        "Model: chest-3class 1.0",
        NOT_FOR_DIAGNOSIS,
    )
    assert age_text(0.5) == "6 months" and age_text(None) == ""


def test_report_facts_need_no_qt():
    import xraydesk.viewer.report_facts as module

    assert "PySide6" not in Path(module.__file__).read_text()
