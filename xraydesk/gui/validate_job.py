"""The validation page's job: ``xraydesk validate`` off the GUI thread (``gui.jobs`` idiom).

The same engine as the command: ``validate.labels`` reads the labelled folder,
``validate.site_run`` classifies it through the batch engine (the one verdict),
``validate.report`` builds the report and ``validate.profile_fit`` adopts a site profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xraydesk.gui.jobs import Job
from xraydesk.gui.save_target import check_save_target


class ValidationStopped(Exception):
    """The user stopped the run before every image was classified: no report."""


@dataclass(frozen=True)
class ValidationRequest:
    card_path: Path
    folder: Path
    labels_csv: Path | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    sample: int | None = None
    seed: int = 0
    hide_names: bool = False
    device: str = "auto"
    adopt_profile: bool = False
    indeterminate_below: float = 0.5
    sensitivity: float = 0.9


@dataclass(frozen=True)
class ValidationOutcome:
    report: dict[str, Any]
    image_paths: dict[str, Path]  # report name -> file, for the PDF's thumbnails


class ValidateJob(Job):
    """Validates one model on one labelled folder; ``progress`` carries BatchProgress."""

    cancel_errors = (ValidationStopped,)

    def __init__(self, request: ValidationRequest) -> None:
        super().__init__()
        self.request = request

    def work(self) -> ValidationOutcome:
        from xraydesk.classifier import Classifier
        from xraydesk.model.card import ModelCard
        from xraydesk.model.site_profile import NO_PROFILE
        from xraydesk.validate.labels import load_labelled
        from xraydesk.validate.report import build_report
        from xraydesk.validate.site_run import classify_site

        r = self.request
        card = ModelCard.read(r.card_path)
        labelled = load_labelled(
            r.folder,
            card.class_ids,
            card.display_names,
            r.mapping,
            r.labels_csv,
            r.sample,
            r.seed,
            r.hide_names,
        )
        classifier = Classifier.load(card, device=r.device)
        if r.adopt_profile:  # fitted on the card's own calibration, not a former profile's
            classifier.site_profile = NO_PROFILE
        images = classify_site(
            labelled, classifier, on_progress=self.progress.emit, cancel=self.cancel_event
        )
        if self.cancel_event.is_set() or len(images) < len(labelled.images):
            raise ValidationStopped("Validation stopped: no report was made.")
        report = build_report(card, labelled, images)
        if r.adopt_profile:
            from xraydesk.validate.profile_fit import adopt_profile

            report["site_profile"] = adopt_profile(
                card, labelled, images, r.seed, r.indeterminate_below, r.sensitivity
            )
        elif classifier.site_profile.profile is not None:
            report["model"]["site_profile_in_use"] = classifier.site_profile.profile.line
        return ValidationOutcome(report, {s.image.name: s.image.path for s in images})


def save_report(outcome: ValidationOutcome, base: Path, pdf: bool = True) -> list[Path]:
    """Write BASE.json (and BASE.pdf), as ``xraydesk validate -o BASE`` does."""
    from xraydesk.validate.report import write_json

    written = [base.with_name(base.name + ".json")]
    targets = [*written, base.with_name(base.name + ".pdf")] if pdf else written
    from xraydesk.model.library import card_files

    cards = card_files()
    for target, what in zip(targets, ("the JSON report", "the PDF report"), strict=False):
        # before either is written: a pipe or device named BASE.pdf was replaced by it
        images = outcome.image_paths.values()
        check_save_target(target, what, images, "an image validated", document=True)
        # a report saved as models/NAME.json replaced that model's card (the model lost)
        check_save_target(target, what, cards, "the card of an installed model")
    write_json(outcome.report, written[0])
    if pdf:
        from xraydesk.validate.pdf import write_pdf

        written.append(base.with_name(base.name + ".pdf"))
        write_pdf(outcome.report, written[1], outcome.image_paths)
    return written
