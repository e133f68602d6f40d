"""Classifying a site's labelled images through the batch engine, and their subgroups.

The images go through ``BatchRun`` (as ``xraydesk classify`` and the GUI's batch panel
do), so each gets the one verdict of ``xraydesk.trust.verdict``: a validation measures
what users will be shown, warnings and withheld results included. Nothing is recorded
in the results database and nothing is reused from it: a validation sees every image.

Subgroups come from what the files say: DICOM Manufacturer, ViewPosition, PatientAge
(as an age band) and PatientSex, read from the header alone. No identifier is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xraydesk.batch.progress import BatchProgress
from xraydesk.batch.rows import ResultRow
from xraydesk.classifier import Classifier
from xraydesk.errors import ImageLoadError
from xraydesk.imaging.age import parse_dicom_age, parse_dicom_sex
from xraydesk.imaging.limits import check_file
from xraydesk.imaging.loader import sniff_format
from xraydesk.validate.labels import LabelledImage, LabelledSet

log = logging.getLogger(__name__)

SUBGROUP_KEYS = ("manufacturer", "view_position", "age_band", "sex")
AGE_BANDS = ((0, 18, "0-17"), (18, 40, "18-39"), (40, 65, "40-64"), (65, 200, "65+"))
_HEADER_TAGS = ["Manufacturer", "ViewPosition", "PatientAge", "PatientSex"]


@dataclass
class SiteImage:
    """One labelled image and its verdict."""

    image: LabelledImage
    row: ResultRow
    groups: dict[str, str] = field(default_factory=dict)  # subgroup key -> value

    @property
    def answered(self) -> bool:
        return self.row.prediction is not None and self.row.probabilities is not None


def classify_site(
    labelled: LabelledSet,
    classifier: Classifier,
    *,
    on_progress: Callable[[BatchProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[SiteImage]:
    """Every labelled image with its verdict, in the labelled set's order."""
    from xraydesk.batch.run import BatchOptions, BatchRun

    options = BatchOptions(record=False, skip_known=False, count_total=False)
    paths = [image.path for image in labelled.images]
    batch = BatchRun(paths, classifier, options, cancel=cancel, on_progress=on_progress)
    rows = batch.rows()
    found: dict[Path, ResultRow] = {}  # by path, not by position: a row is never misfiled
    try:
        for row in rows:
            found[Path(row.path)] = row
    finally:
        rows.close()
    return [
        SiteImage(image, found[image.path], header_groups(image.path))
        for image in labelled.images
        if image.path in found  # missing only when the run was stopped early
    ]


def header_groups(path: Path) -> dict[str, str]:
    """The subgroups a DICOM file's header names; {} for other files or unreadable headers.
    Checked on ``stat`` first (``limits.check_file``): a named pipe called x.png, which the
    batch run had already refused, blocked this open for good."""
    try:
        check_file(path)
        with path.open("rb") as handle:
            head = handle.read(132)
    except (OSError, ImageLoadError):
        return {}
    if sniff_format(head) != "DICOM":
        return {}
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=_HEADER_TAGS)
    except Exception as exc:  # a broken header only loses its subgroups; the batch row says more
        log.info("no subgroup facts from a DICOM header: %s", type(exc).__name__)
        return {}
    groups: dict[str, str] = {}
    manufacturer = _text(ds.get("Manufacturer"))
    if manufacturer:
        groups["manufacturer"] = manufacturer
    view = _text(ds.get("ViewPosition"))
    if view:
        groups["view_position"] = view.upper()
    age = parse_dicom_age(_text(ds.get("PatientAge")))
    if age is not None:
        groups["age_band"] = age_band(age)
    sex = parse_dicom_sex(_text(ds.get("PatientSex")))
    if sex is not None:
        groups["sex"] = sex
    return groups


def age_band(years: float) -> str:
    """The report's age band of an age in years."""
    return next(name for low, high, name in AGE_BANDS if low <= years < high or high == 200)


def _text(value: object) -> str | None:
    """A header value (``Dataset.get(keyword)``) as stripped text; None when empty."""
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if len(value) else None
    text = str(value).strip() if value is not None else ""
    return text or None
