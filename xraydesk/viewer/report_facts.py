"""What a report says, as plain text (no Qt here): who and what was imaged, the answer,
what the heat map explains, the model's limits.

The PDF (gui/report.py) and the exported PNG's legend (explain/legend.py) only lay
these out, so the wording is decided once and tested without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from xraydesk.explain.legend import NOT_FOR_DIAGNOSIS, legend_lines
from xraydesk.imaging.xray import ImageMetadata, PatientInfo
from xraydesk.viewer.corners import format_date, format_name

__all__ = ["NOT_FOR_DIAGNOSIS", "legend_text", "report_facts"]
IDENTIFIERS_LEFT_OUT = (
    "Patient identifiers left out (setting: File › Patient identifiers in reports)"
)
SEX_NAMES = {"M": "Male", "F": "Female", "O": "Other"}


@dataclass(frozen=True)
class Answer:
    """The result as the report states it: ``text`` ("Normal 92.0%", or "Withheld"),
    ``withheld`` when the app gives no class, ``reason`` why."""

    text: str
    withheld: bool = False
    reason: str = ""


@dataclass(frozen=True)
class ReportFacts:
    identifiers: tuple[tuple[str, str], ...]  # (label, value), in reading order
    answer: Answer
    explained: str = ""  # "The heat map shows what supports Pneumonia." ("" without a map)
    explained_differs: str = ""  # said prominently when the map explains another class
    limitations: tuple[str, ...] = ()
    model: str = ""  # "name version"
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. identifiers left out


def age_text(age_years: float | None) -> str:
    """68 -> "68 years"; under two years in months, so an infant is not "0 years"."""
    if age_years is None:
        return ""
    if age_years < 2:
        months = round(age_years * 12)
        return f"{months} month" + ("" if months == 1 else "s")
    return f"{int(age_years)} years"


def identifier_rows(
    metadata: ImageMetadata | None,
    patient: PatientInfo | None,
    include_identity: bool,
) -> tuple[tuple[str, str], ...]:
    """The header's rows. Name, ID, birth date and accession only with
    ``include_identity``; age, sex, study date and view always (they identify no one
    on their own and the reading needs them). A missing value reads "not recorded"."""
    rows: list[tuple[str, str]] = []
    if include_identity:
        patient = patient or PatientInfo()
        rows += [
            ("Patient", format_name(patient.name)),
            ("Patient ID", patient.patient_id or ""),
            ("Birth date", format_date(patient.birth_date)),
            ("Accession", patient.accession or ""),
        ]
    if metadata is not None:
        sex = SEX_NAMES.get((metadata.sex or "").upper(), metadata.sex or "")
        rows += [
            ("Age", age_text(metadata.age_years)),
            ("Sex", sex),
            ("Study date", format_date(metadata.study_date)),
            ("View", metadata.view_position or ""),
        ]
    return tuple((label, value or "not recorded") for label, value in rows)


def answer_of(
    probabilities: Mapping[str, float] | None,
    predicted: str | None,
    names: Mapping[str, str],
    withheld_reason: str = "",
) -> Answer:
    """The answer line: the predicted class and its probability, or "Withheld" with the
    reason when the app withholds the class (the gate refused the image, or the model
    gave no usable numbers)."""
    if withheld_reason or predicted is None or not probabilities:
        reason = withheld_reason or "the model gave no usable result"
        return Answer("Withheld (indeterminate)", withheld=True, reason=reason)
    name = names.get(predicted, predicted)
    return Answer(f"{name} {probabilities[predicted] * 100:.1f}%")


def explained_texts(
    explained_class: str | None, predicted: str | None, names: Mapping[str, str]
) -> tuple[str, str]:
    """(the plain statement, the warning when it differs from the answer)."""
    if explained_class is None:
        return "", ""
    name = names.get(explained_class, explained_class)
    plain = f"The heat map shows what supports {name}."
    if predicted is None or explained_class == predicted:
        return plain, ""
    answer = names.get(predicted, predicted)
    differs = (
        f"The heat map explains {name}, NOT the answer ({answer}): it shows what would "
        f"support {name}, not why the model answered {answer}."
    )
    return plain, differs


def report_facts(
    *,
    metadata: ImageMetadata | None,
    patient: PatientInfo | None,
    probabilities: Mapping[str, float] | None,
    predicted: str | None,
    names: Mapping[str, str],
    explained_class: str | None = None,
    withheld_reason: str = "",
    limitations: Sequence[str] = (),
    model: str = "",
    include_identity: bool = True,
) -> ReportFacts:
    """Everything the report states in words, from the image, the result and the card."""
    answer = answer_of(probabilities, predicted, names, withheld_reason)
    plain, differs = explained_texts(explained_class, None if answer.withheld else predicted, names)
    has_identity = patient is not None and any(
        (patient.name, patient.patient_id, patient.birth_date, patient.accession)
    )
    notes = (IDENTIFIERS_LEFT_OUT,) if not include_identity and has_identity else ()
    return ReportFacts(
        identifiers=identifier_rows(metadata, patient, include_identity),
        answer=answer,
        explained=plain,
        explained_differs=differs,
        limitations=tuple(limitations),
        model=model,
        notes=notes,
    )


def legend_text(explained_class_name: str | None, model: str) -> tuple[str, ...]:
    """The exported PNG's legend lines, beside the colour scale (``explain.legend``)."""
    return legend_lines(explained_class_name, model)
