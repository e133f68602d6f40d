"""``xraydesk validate MODEL FOLDER``: how a model does on a site's own labelled images.

A thin front door over ``xraydesk.validate``: the images are classified by the batch
engine (the same verdict as everywhere else) and the report is written as JSON and PDF.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xraydesk.cli.outputs import check_file_target, check_writable_folder
from xraydesk.cli.progress import TerminalBar, is_terminal
from xraydesk.errors import XRayDeskError
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.path_args import path_arg, path_text
from xraydesk.printable import printable
from xraydesk.runtime.names import RUNTIME_CHOICES

EPILOG = """\
FOLDER holds the site's labelled images: one subfolder per label (normal/, pneumonia/,
...), or any layout with --labels FILE.csv (columns path and label; paths relative to
FOLDER). A label that is not one of the model's classes (by id or name) must be mapped:
--map bacterial=pneumonia --map viral=pneumonia, or --map other=skip to leave it out.

The report (OUT.json and OUT.pdf) gives n per class; accuracy, sensitivity and
specificity per class with 95 % Wilson intervals; ROC curves with bootstrap AUC
intervals; a reliability diagram and the ECE; the confusion matrix; the share of images
flagged (any warning) and withheld (no answer), and the accuracy of the answers given
without a warning; per-subgroup accuracy where DICOM headers state the manufacturer,
view, age or sex; the most confidently wrong images (thumbnails in the PDF, file names
in the JSON, or CLASS/image-N with --hide-names when file names identify patients; no
DICOM header field but those four is read); and the model card's test figures beside the
site's, saying plainly where the site is worse. The JSON's "images" rows hold each
image's label, prediction, probabilities and warnings, for checking every figure.

PROFILE: --adopt-profile splits the images in two by a seeded draw (--seed), whole
patients at a time where the labels CSV has a patient column. On the first half it fits
the site's temperature and operating rule: answers whose top probability is below
--indeterminate-below are withheld as "indeterminate", and per class the threshold at
which about --sensitivity of that class's images are called positive. The report's
"site_profile" part gives the held-back half's figures with and without the profile
(figures on the fitting half are optimistic). The profile is stored signed (sha256 over
its content and the model's weights digest) and applied by every front door; an edited
or foreign profile is refused with a warning. `xraydesk models profile MODEL --remove`
removes it.

Exit status: 0 report written; 1 report written but some files could not be classified
(each is named on stderr with the cause); 2 bad input (folder, labels, mapping, model), nothing
written; 130 interrupted.
"""

NOTHING_VALIDATED = "nothing was validated"
INSTALLED_CARD = "the card of an installed model"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="site acceptance: a model's figures on your own labelled images (PDF, JSON)",
        description="Validate a model on a folder of labelled images and write a report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=path_text, metavar="MODEL", help="model name or card path")
    parser.add_argument("folder", type=path_arg, metavar="FOLDER", help="the labelled images")
    parser.add_argument(
        "--labels", type=path_arg, metavar="FILE.csv", help="labels from a CSV (path,label)"
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="LABEL=CLASS",
        help="what a site label means in the model's classes (repeatable; CLASS skip: leave out)",
    )
    parser.add_argument(
        "-o",
        "--out",
        type=path_arg,
        default=Path("validation"),
        metavar="OUT",
        help="write OUT.json and OUT.pdf (default: ./validation)",
    )
    parser.add_argument("--no-pdf", action="store_true", help="write the JSON report only")
    parser.add_argument(
        "--sample", type=int, metavar="N", help="validate a seeded random subset of N images"
    )
    parser.add_argument("--seed", type=int, default=0, help="the subset's seed (default 0)")
    parser.add_argument(
        "--hide-names",
        action="store_true",
        help="name images CLASS/image-N in the report (for file names that identify patients)",
    )
    parser.add_argument(
        "--adopt-profile",
        action="store_true",
        help="fit a site profile (temperature, indeterminate threshold, class thresholds) on "
        "a seeded half of the images, report the other half with and without it, and store "
        "it beside the model (see PROFILE below)",
    )
    parser.add_argument(
        "--indeterminate-below",
        type=_probability,
        default=0.5,
        metavar="P",
        help="with --adopt-profile: withhold answers whose top probability is below P "
        "(default 0.5)",
    )
    parser.add_argument(
        "--sensitivity",
        type=_probability,
        default=0.9,
        metavar="S",
        help="with --adopt-profile: per-class thresholds for this sensitivity (default 0.9)",
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--runtime", choices=RUNTIME_CHOICES, help="inference runtime")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from xraydesk.classifier import Classifier
    from xraydesk.model.library import card_files, resolve_model
    from xraydesk.validate.labels import load_labelled, parse_mapping
    from xraydesk.validate.report import build_report, summary_lines, write_json
    from xraydesk.validate.site_run import classify_site

    if args.out.name in ("", ".", ".."):  # "-o ." or "-o /": no name to add .json to
        raise XRayDeskError(
            f"--out {printable(args.out)}: give a file name such as reports/site "
            f"(written as site.json and site.pdf); {NOTHING_VALIDATED}"
        )
    out_json = args.out.with_name(args.out.name + ".json")
    out_pdf = args.out.with_name(args.out.name + ".pdf")
    check_writable_folder(out_json.parent, "--out", NOTHING_VALIDATED)
    given = [] if args.labels is None else [args.labels]
    cards = card_files()  # a report must never replace a model's card
    for target in (out_json,) if args.no_pdf else (out_json, out_pdf):
        check_file_target(target, "--out", NOTHING_VALIDATED, given)
        # -o models/NAME would have replaced that model's card (the model lost)
        check_file_target(target, "--out", NOTHING_VALIDATED, cards, INSTALLED_CARD)
    card = resolve_model(args.model)  # before the images are listed: a typo fails fast
    labelled = load_labelled(
        args.folder,
        card.class_ids,
        card.display_names,
        parse_mapping(args.map),
        args.labels,
        args.sample,
        args.seed,
        args.hide_names,
    )
    classifier = Classifier.load(card, device=args.device, runtime=args.runtime)
    if args.adopt_profile:  # fitted on the card's own calibration, not a former profile's
        from xraydesk.model.site_profile import NO_PROFILE

        classifier.site_profile = NO_PROFILE
    elif classifier.site_profile.profile is not None:
        print(f"{card.label}: {classifier.site_profile.profile.line}", file=sys.stderr)
    print(
        f"validating {card.label} on {len(labelled.images)} images of {labelled.folder} "
        f"({classifier.device.label})",
        file=sys.stderr,
    )
    bar = TerminalBar(sys.stderr) if is_terminal(sys.stderr) else None
    try:
        images = classify_site(
            labelled,
            classifier,
            on_progress=(lambda p: bar.draw(p, "")) if bar else None,
        )
    finally:
        if bar is not None:
            bar.close()
    if len(images) < len(labelled.images):
        print("xraydesk: the run stopped early; no report written", file=sys.stderr)
        return 1
    report = build_report(card, labelled, images)
    if args.adopt_profile:
        report["site_profile"] = _adopt(card, labelled, images, args)
    try:
        write_json(report, out_json)
    except OSError as exc:
        raise XRayDeskError(
            f"{out_json}: could not write the report ({exc.strerror or exc})"
        ) from exc
    written = [str(out_json)]
    if not args.no_pdf:
        from xraydesk.validate.pdf import write_pdf

        write_pdf(report, out_pdf, {s.image.name: s.image.path for s in images})
        written.append(str(out_pdf))
    for line in summary_lines(report):
        print(line)
    if "site_profile" in report:
        from xraydesk.validate.profile_fit import profile_lines

        for line in profile_lines(report["site_profile"]):
            print(line)
    unanswered = [s for s in images if not s.answered]
    for s in unanswered:
        cause = s.row.error or "; ".join(w.message for w in s.row.warnings) or "withheld"
        where = printable(s.image.path)
        print(f"xraydesk: {where}: no answer: {printable(cause)}", file=sys.stderr)
    print(f"xraydesk: report written to {' and '.join(written)}", file=sys.stderr)
    if unanswered:
        files = "1 file" if len(unanswered) == 1 else f"{len(unanswered)} files"
        print(f"xraydesk: {files} got no answer (above)", file=sys.stderr)
    # a file that could not be classified is bad input; a result the verdict withholds
    # (without an error) is a finding of the report, not a failure of the run
    return 1 if any(s.row.error for s in unanswered) else 0


def _adopt(card, labelled, images, args: argparse.Namespace) -> dict:
    """Fit the profile on one part, store it, and the report's section on the other."""
    from xraydesk.validate.profile_fit import adopt_profile

    section = adopt_profile(
        card, labelled, images, args.seed, args.indeterminate_below, args.sensitivity
    )
    print(f"xraydesk: site profile stored in {section['stored_in']}", file=sys.stderr)
    return section


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a probability between 0 and 1")
    return value
