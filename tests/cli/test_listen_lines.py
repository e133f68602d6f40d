"""The DICOM node's line per worklist item: an indeterminate result (a lateral film, a
probability under the operating rule) printed "CLASSIFIED: None"; it now says
INDETERMINATE with the warnings that withheld the class, as ``classify`` does. Found by
sending hostile files to a running ``xraydesk listen``."""

from __future__ import annotations

from xraydesk.cli.listen import item_line
from xraydesk.dicomnet.worklist import CLASSIFIED, FAILED, WorkItem

NAMES = {"normal": "Normal", "pneumonia": "Pneumonia"}


def _item(**fields: object) -> WorkItem:
    base = {"sop_uid": "1.2.3", "id": 7, "modality": "DX", "calling_ae": "PACS"}
    return WorkItem(**{**base, **fields})  # type: ignore[arg-type]


def test_a_class_is_named_with_its_probability() -> None:
    item = _item(status=CLASSIFIED, prediction="normal", probabilities={"normal": 0.835})
    assert item_line(item, NAMES) == "worklist #7: DX image from PACS: Normal 83.5%"


def test_an_indeterminate_result_says_why() -> None:
    item = _item(status=CLASSIFIED, indeterminate=True, warnings=["lateral"])
    line = item_line(item, NAMES)
    assert line.endswith(": INDETERMINATE (lateral)") and "None" not in line


def test_a_failure_names_its_error() -> None:
    item = _item(status=FAILED, error="damaged or truncated DICOM", patient_name="DOE^JOHN")
    line = item_line(item, NAMES)
    assert line.endswith(": FAILED: damaged or truncated DICOM") and "DOE" not in line
