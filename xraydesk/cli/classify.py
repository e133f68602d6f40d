"""``xraydesk classify``: probabilities for files and folders, as a table, JSON lines or CSV.

A thin front door over ``xraydesk.batch`` (the same pipeline as the GUI's batch panel):
folders are recorded in the results database, so a second run over the same folder with
the same model reuses what is already classified, and an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from xraydesk.cli.outputs import (
    NOTHING_CLASSIFIED,
    check_file_target,
    check_writable_folder,
    saved_note,
)
from xraydesk.cli.progress import TerminalBar, is_terminal
from xraydesk.durations import format_duration
from xraydesk.errors import XRayDeskError
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.path_args import path_arg, path_text
from xraydesk.printable import printable, table_line
from xraydesk.runtime.names import RUNTIME_CHOICES, RUNTIME_ENV

if TYPE_CHECKING:  # the engine (and torch) are imported by run(), not by --help
    from xraydesk.batch.progress import BatchProgress
    from xraydesk.batch.rows import ResultRow
    from xraydesk.batch.run import RunSummary
    from xraydesk.classifier import Classifier

# Up to this many files (and no folder), the batch network is not folded: folding copies
# and traces the whole ResNet (1-2 s on 2 cores) to save ~20 % of each forward pass, a
# loss for a quick look at a few files. Those run the classifier's own network, as the
# viewer does.
FOLD_FROM_FILES = 33

# The table's PREDICTION for a file classified without a class named (``indeterminate``),
# with what it still finds: "INDETERMINATE (FINDS PNEUMONIA)" (``ResultRow.outcome_words``)
INDETERMINATE = "INDETERMINATE"

EPILOG = """\
Output: a table on stdout, or with --json one JSON object per line (JSON Lines) with the
keys path, sha256, model, prediction, probabilities (class id -> probability), error,
seconds, classified_at (ISO 8601, UTC), reused, warnings (stable codes: not_chest,
rotated, inverted, lateral, out_of_distribution, low_quality, outside_population (the
DICOM PatientAge is outside the ages the model card states), ...), warning_messages,
indeterminate, withheld_prediction and finding. --csv writes the same rows with one p_<class id>
column per class and the codes joined by ";". Error rows have an error and no
prediction. A flagged image still gets its row: its warnings say why its probabilities
must not be trusted (the table's WARNINGS column).

Indeterminate: a file classified without a class named, because its top probability is
below the model's operating rule (warning indeterminate) or the input gate flagged the
image (not_chest, rotated, inverted, lateral, low_quality: the viewer hides its numbers
too), has prediction null and indeterminate true (the table's PREDICTION says
INDETERMINATE); its probabilities are still printed for reference, and the top class it
withholds is only under withheld_prediction. Every other row has indeterminate false.
finding: what an indeterminate answer still finds, the model card's class group whose
summed probability the rule accepts (the pediatric model's bacterial and viral:
"pneumonia"; the table says INDETERMINATE (FINDS PNEUMONIA)); null on every other row.

--auto-orient: an image the input gate is confident is rotated by 90, 180 or 270
degrees, or inverted (a negative), is turned back or inverted back in memory and
classified again; the file is never changed, and the row keeps the rotated/inverted
warning saying the result comes from the corrected image.

Folders are recorded in the results database (results.sqlite in the XRayDesk data
folder; XRAYDESK_DATA_DIR moves it). Running again over the same folder with the same
model reuses the stored row of every file whose content (sha256) it already classified,
so an interrupted run resumes where it stopped; --no-skip classifies everything again.

A progress bar is drawn on stderr when it is a terminal, never when it is redirected.
Exit status: 0 every file classified, 1 some failed or the run stopped early, 2 usage
or configuration error, 130 interrupted.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "classify",
        help="classify radiographs (files or folders)",
        description="Print the probability of each class for every image.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", type=path_text, metavar="PATH", help="image files or folders"
    )
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--csv", type=path_arg, metavar="FILE", help="also write the rows to FILE")
    parser.add_argument(
        "--cam-dir", type=path_arg, metavar="DIR", help="write heat-map (CAM) overlays here"
    )
    parser.add_argument(
        "--dicom-out",
        type=path_arg,
        metavar="DIR",
        help="write an SR and a heat-map SC per DICOM file",
    )
    parser.add_argument("--send", metavar="PACS", help="C-STORE those to this configured node")
    parser.add_argument(
        "--no-skip",
        action="store_true",
        help="classify every file again, even those this model already classified",
    )
    parser.add_argument(
        "--model",
        type=path_text,
        metavar="NAME|PATH",
        help="model name or card path (default: the default model)",
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument(
        "--runtime",
        choices=RUNTIME_CHOICES,
        help=f"inference runtime (default: {RUNTIME_ENV}, else auto: on a CPU the fastest "
        "installed runtime and precision measured faithful to fp32 torch for the model)",
    )
    parser.add_argument(
        "--auto-orient",
        action="store_true",
        help="turn back or invert back (in memory) images the input gate is confident are "
        "rotated or inverted, then classify them",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from xraydesk.batch.rows import describe_write_error
    from xraydesk.batch.run import BatchAborted, BatchOptions, BatchRun
    from xraydesk.classifier import Classifier
    from xraydesk.model.library import resolve_model

    nothing = _nothing_to_classify(args.paths, args.recursive)
    if nothing is not None:  # before the model loads and before a run is recorded
        print(f"xraydesk: {nothing}", file=sys.stderr)
        return 1
    if args.csv is not None:  # never over a film it reads, a named pipe or a device
        check_file_target(args.csv, "--csv", inputs=[Path(p) for p in args.paths])
    if args.cam_dir is not None:  # before the model loads, not a warning per file
        check_writable_folder(args.cam_dir, "--cam-dir")
    if args.dicom_out is not None:  # likewise: not "0 image(s)" after the whole run
        check_writable_folder(args.dicom_out, "--dicom-out")
    card = resolve_model(args.model)
    classifier = Classifier.load(card, device=args.device, runtime=args.runtime)
    print(f"model {card.label} on {classifier.device.label}", file=sys.stderr)
    ids = classifier.class_ids
    folders = any(Path(p).is_dir() for p in args.paths)
    options = BatchOptions(
        recursive=args.recursive,
        skip_known=not args.no_skip,
        record=folders,  # single files are a quick look, not a run worth keeping
        optimise_model=folders or len(args.paths) >= FOLD_FROM_FILES,
        cam_dir=args.cam_dir,
        auto_orient=args.auto_orient,
    )
    bar = TerminalBar(sys.stderr) if is_terminal(sys.stderr) else None

    def on_progress(p: BatchProgress) -> None:
        assert bar is not None
        bar.draw(p, _progress_text(p))

    batch = BatchRun(args.paths, classifier, options, on_progress=on_progress if bar else None)
    saved = saved_note(options.record)
    csv_out = CsvOutput(args.csv, ids) if args.csv else None
    if not args.json:
        print(
            _table_line(["FILE", "PREDICTION", *(card.display_names[c] for c in ids), "WARNINGS"])
        )
    dicom_out = _dicom_output(args, classifier)
    rows = batch.rows()
    stop_message: str | None = None  # why the run ended early, if it did
    interrupted = False
    not_finite = 0  # rows turned into error rows here (see _finite_row)
    try:
        for found in rows:
            row = _finite_row(found)
            not_finite += row is not found
            line = _format_row(row, ids, args.json, card.display_names)
            if bar is not None:
                bar.write_above(line, sys.stdout)
            else:
                print(line, flush=True)
            if dicom_out is not None:
                dicom_out.add(row)
            if csv_out is not None:
                try:
                    csv_out.write(row)
                except OSError as exc:
                    stop_message = describe_write_error(csv_out.path, exc, "the CSV file", saved)
                    batch.stop(stop_message)
                    break
    except BatchAborted as exc:
        stop_message = str(exc)
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly, the finished rows are kept
        batch.stop("the output was closed")
        _silence_stdout()
        stop_message = "the output was closed before the end of the run"
    except KeyboardInterrupt:
        interrupted = True
        batch.stop("interrupted (Ctrl-C)")
    except BaseException:  # a bug: never leave a hidden partial CSV behind it
        if csv_out is not None:
            csv_out.close(keep=False)
        raise
    finally:
        rows.close()  # records how the run ended and stops its threads
        if bar is not None:
            bar.close()
    if csv_out is not None and not csv_out.close(keep=stop_message is None):
        assert csv_out.error is not None
        stop_message = stop_message or describe_write_error(
            csv_out.path, csv_out.error, "the CSV file", saved
        )
    _summary(batch.summary)
    if dicom_out is not None and not interrupted and not dicom_out.finish():
        stop_message = stop_message or "some DICOM results were not made or not sent"
    if interrupted:
        print("xraydesk: interrupted", file=sys.stderr)
        return 130
    if stop_message is not None:
        print(f"xraydesk: {stop_message}", file=sys.stderr)
        return 1
    summary = batch.summary
    return 1 if summary is None or summary.failed or not_finite else 0


class CsvOutput:
    """The --csv file, written as rows come through a ``files.SideFile`` renamed when
    complete: a failure (full disk) never leaves a truncated file that looks finished, and
    side files of killed runs are removed, never piling up. Cells are display text (see
    ``batch.rows.csv_record``), and anything still not UTF-8 is backslash-escaped, so
    the CSV file itself stays valid UTF-8.
    """

    def __init__(self, path: Path, class_ids: list[str]) -> None:
        from xraydesk.batch.rows import csv_header, describe_write_error
        from xraydesk.files import SideFile

        self.path = path
        self.class_ids = class_ids
        self.error: OSError | None = None
        try:
            self._side = SideFile(path, newline="", errors="backslashreplace")
            self._writer = csv.writer(self._side.file)
            self._writer.writerow(csv_header(class_ids))
        except OSError as exc:
            cause = describe_write_error(path, exc, "the CSV file", NOTHING_CLASSIFIED)
            raise XRayDeskError(cause) from exc

    def write(self, row: ResultRow) -> None:
        from xraydesk.batch.rows import csv_record

        self._writer.writerow(csv_record(row, self.class_ids))

    def close(self, keep: bool) -> bool:
        """Close and put in place (``keep``) or delete; False when closing itself failed."""
        if self._side.file.closed:  # already closed (and put in place or deleted)
            return self.error is None
        if not keep:
            self._side.discard()
            return self.error is None
        try:
            self._side.commit()
        except OSError as exc:
            self.error = exc
        return self.error is None


def _nothing_to_classify(paths: list[str], recursive: bool) -> str | None:
    """Why a run over ``paths`` would have no row at all (folders holding no image), or
    None. Stops at the first image, so a large folder costs one directory listing."""
    from xraydesk.imaging.discover import DiscoveryStats, iter_images

    stats = DiscoveryStats()
    found = iter_images(paths, recursive, stats)
    try:
        if next(found, None) is not None or stats.unreadable:
            return None  # an image, or a folder that cannot be read (its own error row)
    finally:
        found.close()
    skipped = []
    if stats.not_images:
        skipped.append(f"{stats.not_images} non-image files")
    if stats.hidden:
        skipped.append(f"{stats.hidden} hidden entries")
    where = ", ".join(printable(p) for p in paths)
    detail = f" ({' and '.join(skipped)} passed over)" if skipped else ""
    hint = "" if recursive else "; -r also looks in subfolders"
    return f"no image found in {where}{detail}{hint}; nothing was classified or recorded"


def _dicom_output(args: argparse.Namespace, classifier: Classifier):
    """--dicom-out/--send: SR + heat-map Secondary Capture per DICOM file (xraydesk.dicomnet)."""
    if args.dicom_out is None and args.send is None:
        return None
    from xraydesk.dicomnet.output import DicomOutput

    return DicomOutput(classifier, args.dicom_out, args.send)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _progress_text(p: BatchProgress) -> str:
    text = f"{p.rate:5.1f} img/s  {format_duration(p.eta)} left"
    return f"{text}  {p.failed} failed" if p.failed else text


def _finite_row(row: ResultRow) -> ResultRow:
    """The row, or an error row in its place when a probability is NaN or infinite (a
    row stored by an older version, or a model fault): NaN is not a result, and not JSON."""
    probs = row.probabilities
    if row.ok and probs is not None and all(math.isfinite(p) for p in probs.values()):
        return row
    if row.ok and probs is None and row.indeterminate:  # withheld, stored without numbers
        return row
    if row.ok:
        cause = "the model gave probabilities that are not finite numbers (NaN or infinity)"
        return replace(row, prediction=None, probabilities=None, error=cause, indeterminate=False)
    return row


def _format_row(row: ResultRow, ids: list[str], as_json: bool, names: dict[str, str]) -> str:
    if as_json:
        return json.dumps(row.to_json_dict(), allow_nan=False)
    if not row.ok:
        return _table_line([str(row.path), f"ERROR: {row.error}"])
    probs = row.probabilities or {}
    # no class named (the one verdict): the numbers stay, as "Show anyway" shows them
    withheld = row.outcome_words.upper() if row.indeterminate else ""
    return _table_line(
        [
            str(row.path),
            names.get(row.prediction, row.prediction) if row.prediction else withheld,
            *(f"{probs[c]:6.1%}" if c in probs else "     -" for c in ids),
            ", ".join(row.warning_codes),
        ]
    )


def _table_line(cells: list[str]) -> str:
    """One row: tabs, newlines and other control characters in a cell escaped."""
    return table_line(list(cells))


def _summary(summary: RunSummary | None) -> None:
    if summary is None:
        return
    from xraydesk.batch.database import default_db_path

    total = summary.done
    parts = [f"{total - summary.failed} of {total} classified"]
    if summary.reused:
        parts.append(f"{summary.reused} of them reused from earlier runs")
    if summary.failed:
        parts.append(f"{summary.failed} failed")
    if summary.not_images:
        parts.append(f"{summary.not_images} non-image files skipped")
    if summary.hidden:
        parts.append(f"{summary.hidden} hidden entries skipped")
    classified = summary.classified  # this run's: no failed file, no row reused
    if classified and summary.seconds > 0:
        parts.append(f"{summary.seconds:.1f} s ({classified / summary.seconds:.1f} images/s)")
    else:
        parts.append(f"{summary.seconds:.1f} s")
    print("xraydesk: " + ", ".join(parts), file=sys.stderr)
    if summary.run_id is not None:
        print(
            f"xraydesk: recorded as run {summary.run_id} ({summary.status}) in {default_db_path()}",
            file=sys.stderr,
        )
