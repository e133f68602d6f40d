"""``xraydesk monitor``: the per-day trend of the results database and the drift check.

A thin front door over ``xraydesk.monitor``: it reads ``results.sqlite`` (batch runs and
the DICOM node's worklist), never writes it, and loads no model.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from xraydesk.cli.outputs import check_file_target
from xraydesk.errors import XRayDeskError
from xraydesk.path_args import path_arg

if TYPE_CHECKING:
    from xraydesk.monitor.daily import DayStats

EXIT_DRIFT = 1

EPILOG = """\
Prints one line per UTC day and model: images, the share of each predicted class, the
indeterminate rate (images given no class), the out-of-distribution rate, the number
of warnings, the mean confidence and the mean seconds per image.

With a baseline (--baseline FILE: a site validation report, the OUT.json that
`xraydesk validate` writes, or a file from --save-baseline; or --baseline-days FROM..TO:
those days of the database), it checks the period for drift and exits with status 1
when a figure moved: the class mix drifts when a chi-square test of homogeneity gives
p < --alpha AND the total-variation distance is at least --max-tvd; the indeterminate
and OOD rates when a 2x2 chi-square test gives p < --alpha AND the rate moved by at
least --max-rate-change. Each side needs --min-images images, else the figure is "not
judged".
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "monitor",
        help="the per-day trend of the results and a drift check against a baseline",
        description="Per-day figures of classified images, and drift from the site baseline.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", type=path_arg, metavar="FILE", help="results database")
    parser.add_argument(
        "--days", type=int, default=7, help="the period: the last N UTC days (default 7)"
    )
    parser.add_argument("--since", metavar="YYYY-MM-DD", help="the period starts on this day")
    parser.add_argument("--until", metavar="YYYY-MM-DD", help="the period ends on this day")
    parser.add_argument("--model", metavar="LABEL", help='only this model ("name version")')
    parser.add_argument("--baseline", type=path_arg, metavar="FILE", help="baseline JSON")
    parser.add_argument(
        "--baseline-days", metavar="FROM..TO", help="baseline: these days of the database"
    )
    parser.add_argument(
        "--save-baseline", type=path_arg, metavar="FILE", help="write the period as a baseline"
    )
    parser.add_argument("--alpha", type=float, default=0.01, help="significance (default 0.01)")
    parser.add_argument("--max-tvd", type=float, default=0.15, help="class mix (default 0.15)")
    parser.add_argument(
        "--max-rate-change", type=float, default=0.10, help="rates, absolute (default 0.10)"
    )
    parser.add_argument("--min-images", type=int, default=30, help="per side (default 30)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from xraydesk.batch.database import default_db_path
    from xraydesk.monitor.daily import daily_stats, merge, models_of
    from xraydesk.monitor.drift import Baseline, Thresholds, check_drift, load_baseline
    from xraydesk.printable import printable

    if args.baseline and args.baseline_days:
        raise XRayDeskError("give --baseline or --baseline-days, not both")
    db = args.db or default_db_path()
    if args.save_baseline:  # before the period is read: never over the database it reads
        given = [db] if args.baseline is None else [db, args.baseline]
        check_file_target(args.save_baseline, "--save-baseline", "nothing was written", given)
    since, until = _period(args)
    days = daily_stats(db, since, until)
    baseline = load_baseline(args.baseline) if args.baseline else None
    model = args.model or (baseline.model if baseline else None)
    models = models_of(days)
    if model is None and models:
        model = models[0]
    print(f"{printable(db)}: {since} .. {until} (UTC)")
    if not days:
        # a mistyped --db read as an empty period, with no hint that the file is not there
        missing = (
            ""
            if db.exists()
            else f" ({printable(db)} does not exist: nothing was classified into it)"
        )
        print(f"no classified images in this period{missing}")
    for d in days:
        if args.model is None or d.model == args.model:
            print(printable(trend_line(d)))
    period = merge(days, model, f"{since}..{until}") if model is not None else None
    if args.save_baseline:
        _save_baseline(args.save_baseline, period, f"{db.name} {since}..{until}")
    if model is None or period is None:
        return 0
    if args.baseline_days:
        start, end = _day_range(args.baseline_days)
        base = merge(daily_stats(db, start, end), model)
        baseline = Baseline.from_stats(base, f"{start}..{end}")
    if baseline is None:
        return 0
    if baseline.model and baseline.model != model:
        print(f"warning: the baseline is of {baseline.model}, the period of {model}")
    limits = Thresholds(args.alpha, args.max_tvd, args.max_rate_change, args.min_images)
    checks = check_drift(baseline, period, limits)
    print(printable(f"drift of {model} against {baseline.source}:"))
    for check in checks:
        print(printable(f"  {check.line}"))
    drifted = [c.figure for c in checks if c.drifted]
    if drifted:
        print(f"xraydesk: drift from the baseline: {', '.join(drifted)}", file=sys.stderr)
        return EXIT_DRIFT
    return 0


def _save_baseline(target: Path, period: DayStats | None, source: str) -> None:
    """Write the period as a baseline; an error when it has no classified image. Why: an
    empty database exited 0 and wrote nothing, without a word, and a baseline of 0 images
    would judge nothing ("not judged" for every figure, however far the site drifts)."""
    from xraydesk.monitor.drift import Baseline
    from xraydesk.printable import printable

    where = printable(target)
    if period is None or period.images == 0:
        of = "" if period is None else f" of {period.model}"
        raise XRayDeskError(
            f"--save-baseline {where}: no classified images{of} in this period, so there "
            "is no baseline to save; nothing was written"
        )
    try:
        Baseline.from_stats(period, source).write(target)
    except OSError as exc:
        raise XRayDeskError(f"{where}: cannot write ({exc.strerror})") from exc
    print(f"baseline of {period.images} images written to {where}")


def trend_line(d: DayStats) -> str:
    """One day of one model, in one line."""
    rate = d.rate
    mix = ", ".join(f"{c} {n / d.images:.0%}" for c, n in sorted(d.classes.items()))
    flagged = sum(d.warnings.values())
    parts = [
        f"{d.day} {d.model}: {d.images} images",
        mix or "no answers",
        f"indeterminate {rate(d.indeterminate):.1%}",
        f"OOD {rate(d.ood):.1%}",
        f"warnings {flagged}",
    ]
    if d.mean_confidence is not None:
        parts.append(f"confidence {d.mean_confidence:.2f}")
    if d.mean_latency is not None:
        parts.append(f"{d.mean_latency:.3f} s/image")
    return "; ".join(parts)


def _period(args: argparse.Namespace) -> tuple[date, date]:
    until = _day(args.until, "--until") if args.until else datetime.now(UTC).date()
    if args.since:
        since = _day(args.since, "--since")
    else:
        if args.days < 1:
            raise XRayDeskError("--days must be 1 or more")
        since = until - timedelta(days=args.days - 1)
    if since > until:
        raise XRayDeskError(f"the period starts ({since}) after it ends ({until})")
    return since, until


def _day_range(text: str) -> tuple[date, date]:
    first, sep, last = text.partition("..")
    if not sep:
        raise XRayDeskError(f"--baseline-days {text!r}: expected FROM..TO (YYYY-MM-DD..YYYY-MM-DD)")
    start, end = _day(first, "--baseline-days"), _day(last, "--baseline-days")
    if start > end:
        raise XRayDeskError(f"--baseline-days {text!r}: it starts after it ends")
    return start, end


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise XRayDeskError(f"{option} {text!r}: not a day (YYYY-MM-DD)") from None
