"""Results as DICOM objects a PACS viewer already shows (highdicom).

For one source image:

- a Comprehensive SR: the model (name and version, TID 4019 Algorithm Identification),
  the predicted class, every class probability, the warnings (the image reader's notes,
  and the trust checks': not a chest film, rotated, inverted, out of distribution...)
  and a "not for diagnosis" comment, referencing the source image;
- a Secondary Capture: the radiograph with the heat map (CAM) of the predicted class
  burnt in and "NOT FOR DIAGNOSIS" written into the pixels (Burned In Annotation YES), so
  no viewer can show it without the warning.

An indeterminate result (the one verdict names no class: the operating rule, or the
input gate) says so: the SR's finding is "Indeterminate" (code ``INDETERMINATE``), never
the withheld class, with a comment saying no class is given; the probabilities stay
listed for reference; the Secondary Capture carries no heat map (it would show the
withheld answer) and its caption says "Indeterminate".

Patient and study identifiers are copied from the source by highdicom (it is the SR's
evidence and the SC's reference dataset), so both land in the source's study: from a
reference dataset ``header_values.clean_reference`` builds, since real headers hold values
highdicom refuses (what it changed is noted in the SR, never with the value); every new
Series and SOP Instance UID comes from ``pydicom.uid.generate_uid``. Why a Secondary
Capture rather than a presentation state: every viewer displays it, and a heat map is
colour, which a Grayscale Softcopy Presentation State cannot carry.
"""

from __future__ import annotations

import re
import warnings as warnings_module
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.coding import Code
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from xraydesk import __version__
from xraydesk.classifier import Classifier, ForwardOutputs
from xraydesk.dicomnet.header_values import clean_reference, header_note
from xraydesk.dicomnet.instance_files import write_private
from xraydesk.errors import XRayDeskError
from xraydesk.imaging import load_xray
from xraydesk.trust.check import TrustCheck
from xraydesk.trust.codes import ResultWarning

NOT_FOR_DIAGNOSIS = "NOT FOR DIAGNOSIS"
MANUFACTURER = "XRayDesk"
SCHEME = "99XRAYDESK"  # private coding scheme for the model's classes
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
DISCLAIMER = (
    "Produced by XRayDesk, a research tool: not for diagnosis. The probabilities are a "
    "model's output, not a finding of a physician."
)

_REPORT = Code("18748-4", "LN", "Diagnostic imaging report")
_FINDING = Code("121071", "DCM", "Finding")
_COMMENT = Code("121106", "DCM", "Comment")
_SOURCE = Code("121112", "DCM", "Source of Measurement")
_UNITLESS = Code("1", "UCUM", "no units")
INDETERMINATE_FINDING = Code("INDETERMINATE", SCHEME, "Indeterminate")
INDETERMINATE_COMMENT = (
    "Indeterminate: the model names no class for this image (see the warnings); read it "
    "without the model's answer. The probabilities are listed for reference only."
)


class ResultsError(XRayDeskError):
    """The SR or Secondary Capture could not be made for a source file."""


@dataclass
class ResultObjects:
    sr: Dataset
    sc: Dataset
    prediction: str | None  # None: indeterminate, no class named
    warnings: list[str] = field(default_factory=list)
    # attributes of the source header not copied as they were (names and causes only)
    header_notes: list[str] = field(default_factory=list)

    def write(self, out_dir: Path) -> list[Path]:
        """Write both as ``<SOP Instance UID>.dcm`` (0600: they carry patient data)."""
        written = []
        for ds in (self.sr, self.sc):
            path = out_dir / f"{ds.SOPInstanceUID}.dcm"
            buffer = BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            write_private(path, buffer.getvalue())
            written.append(path)
        return written


def make_results(
    source: Path,
    classifier: Classifier,
    probabilities: dict[str, float] | None = None,
    trust_warnings: Sequence[ResultWarning] | None = None,
    indeterminate: bool | None = None,
) -> ResultObjects:
    """SR and heat-map Secondary Capture for ``source``. ``probabilities`` (class id ->
    probability) and ``trust_warnings`` (gate, OOD, population) from the batch engine's
    row avoid a second forward pass; without them the image is checked and classified
    here (``TrustCheck``), so the SR never states a result without its warnings.
    ``indeterminate``: the verdict's (the row's flag); None takes it from the check made
    here, so no class is named where the one verdict names none."""
    try:
        header = dcmread(source, stop_before_pixels=True, force=True)
    except (OSError, InvalidDicomError, ValueError) as exc:
        raise ResultsError(f"{source}: not a DICOM file ({type(exc).__name__})") from exc
    clean = clean_reference(header, source)
    ref = clean.dataset
    xray = load_xray(source)
    forward = None  # the pass that classified it here, reused for the heat map
    if probabilities is None or trust_warnings is None or indeterminate is None:
        checked = TrustCheck.of(classifier).classify(xray, activations=True)
        probabilities = probabilities or checked.prediction.probabilities
        trust_warnings = checked.warnings if trust_warnings is None else trust_warnings
        if indeterminate is None:
            indeterminate = checked.verdict is not None and checked.verdict.is_indeterminate
        forward = checked.forward
    top = max(probabilities, key=lambda c: probabilities[c])  # the verdict's class, or withheld
    predicted = None if indeterminate else top
    names = classifier.card.display_names
    warnings = [*xray.notes, *(f"Warning ({w.code}): {w.message}" for w in trust_warnings)]
    warnings += [header_note(clean.notes)] if clean.notes else []  # SR text, no values
    frames = xray.metadata.frames
    frame_note = f"Classified frame 1 of {frames}: the other frames were not read"
    warnings += [frame_note] if frames > 1 else []  # the reader's note says "showing"
    try:
        with warnings_module.catch_warnings():
            # highdicom warns about single-component person names ("Anonymized"): copied
            warnings_module.simplefilter("ignore", UserWarning)
            confidence = probabilities[top]
            sc = _secondary_capture(ref, xray, classifier, predicted, confidence, forward)
            sc.Laterality = clean.laterality or ""  # type 2C: dciodvfy asks for it
            sr = _structured_report(ref, classifier, predicted, probabilities, warnings, names)
            if frames > 1:
                sc.ImageComments = f"{DISCLAIMER} {frame_note}."
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # highdicom's messages quote the offending value (a birth date...): not shown
        raise ResultsError(
            f"{source}: the SR and heat map could not be made ({type(exc).__name__} in the "
            "DICOM encoder)"
        ) from None
    return ResultObjects(
        sr=sr, sc=sc, prediction=predicted, warnings=warnings, header_notes=clean.notes
    )


def _structured_report(
    ref: Dataset,
    classifier: Classifier,
    predicted: str | None,
    probabilities: dict[str, float],
    warnings: list[str],
    names: dict[str, str],
) -> Dataset:
    card = classifier.card
    items: list[Dataset] = [*hd.sr.AlgorithmIdentification(name=card.name, version=card.version)]
    finding = (
        INDETERMINATE_FINDING
        if predicted is None
        else Code(predicted, SCHEME, names.get(predicted, predicted))
    )
    items.append(hd.sr.CodeContentItem(name=_FINDING, value=finding, relationship_type="CONTAINS"))
    if predicted is None:
        warnings = [INDETERMINATE_COMMENT, *warnings]
    for cid in classifier.class_ids:
        items.append(
            hd.sr.NumContentItem(
                name=Code(f"P-{cid}", SCHEME, f"Probability of {names.get(cid, cid)}"),
                value=round(float(probabilities[cid]), 6),
                unit=_UNITLESS,
                relationship_type="CONTAINS",
            )
        )
    for text in [DISCLAIMER, *warnings]:
        items.append(hd.sr.TextContentItem(name=_COMMENT, value=text, relationship_type="CONTAINS"))
    items.append(
        hd.sr.ImageContentItem(
            name=_SOURCE,
            referenced_sop_class_uid=ref.SOPClassUID,
            referenced_sop_instance_uid=ref.SOPInstanceUID,
            relationship_type="CONTAINS",
        )
    )
    root = hd.sr.ContainerContentItem(name=_REPORT)
    root.ContentSequence = items
    sr = hd.sr.ComprehensiveSR(
        evidence=[ref],
        content=root,
        series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,  # nobody verified it: a model's output
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    sr.SeriesDescription = f"XRayDesk {card.label} ({NOT_FOR_DIAGNOSIS.lower()})"
    sr.SoftwareVersions = __version__
    return sr


def _secondary_capture(
    ref: Dataset,
    xray,
    classifier: Classifier,
    predicted: str | None,
    confidence: float,
    forward: ForwardOutputs | None = None,
) -> Dataset:
    from xraydesk.explain import DEFAULT_METHOD, blend_overlay, heat_map, method_label
    from xraydesk.explain.quality import EMPTY_HEATMAP, is_empty_heatmap

    grey = np.round(np.clip(xray.render(), 0.0, 1.0) * 255.0).astype(np.uint8)
    plain = np.repeat(grey[..., None], 3, axis=2)
    if predicted is None:  # indeterminate: a heat map would show the withheld answer
        caption = f"XRayDesk {classifier.card.label}: Indeterminate (no class given), no heat map"
        rgb = plain
    else:
        # the viewer's default (CAM): no backward pass, and no forward when one is given
        cam = heat_map(classifier, xray, predicted, outputs=forward)
        name = classifier.card.display_names.get(predicted, predicted)
        method = method_label(DEFAULT_METHOD)
        caption = f"XRayDesk {classifier.card.label}: {name} {confidence:.0%}, {method}"
        if is_empty_heatmap(cam.heatmap):  # never shown as an explanation: say so instead
            rgb = plain
            caption += f" - {EMPTY_HEATMAP}"
        else:
            rgb = blend_overlay(xray.render(), cam.heatmap)
    rgb = burn_in(rgb, NOT_FOR_DIAGNOSIS, caption)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref,
        pixel_array=rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=generate_uid(),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=_orientation(ref),
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    sc.BurnedInAnnotation = "YES"
    sc.SeriesDescription = f"XRayDesk heat map ({NOT_FOR_DIAGNOSIS.lower()})"
    sc.ImageComments = DISCLAIMER
    sc.SoftwareVersions = __version__
    return sc


def _orientation(ref: Dataset) -> tuple[str, str]:
    value = ref.get("PatientOrientation")
    if value and len(value) == 2 and all(re.fullmatch(r"[APRLHF]{1,3}", str(v)) for v in value):
        return str(value[0]), str(value[1])
    return ("L", "F")  # the usual PA chest view when the source does not say


def burn_in(rgb: np.ndarray, banner: str, caption: str) -> np.ndarray:
    """Write ``banner`` large at the top and ``caption`` at the bottom, white on a dark
    outline, into a copy of the RGB pixels."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(image)
    height, width = rgb.shape[:2]
    big = ImageFont.load_default(size=max(12, height // 14))
    small = ImageFont.load_default(size=max(9, height // 40))
    margin = max(4, height // 60)
    box = draw.textbbox((0, 0), banner, font=big)
    x = max(margin, (width - (box[2] - box[0])) // 2)
    outline = max(1, height // 256)
    draw.text(
        (x, margin),
        banner,
        font=big,
        fill=(255, 255, 255),
        stroke_width=outline,
        stroke_fill=(0, 0, 0),
    )
    box = draw.textbbox((0, 0), caption, font=small)
    draw.text(
        (margin, height - margin - (box[3] - box[1]) - outline),
        caption,
        font=small,
        fill=(255, 255, 255),
        stroke_width=outline,
        stroke_fill=(0, 0, 0),
    )
    return np.asarray(image)
