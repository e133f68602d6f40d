"""``xraydesk train``: train or fine-tune a model on labelled radiographs.

A thin front door: it turns flags into a ``TrainConfig``, shows the engine's progress
(a bar on a terminal, one line per epoch otherwise), and prints the final metrics. The
engine runs in a worker thread so that Ctrl-C can ask it to stop cleanly: it saves a
checkpoint and ``--resume`` continues later.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, TextIO

from xraydesk.cli.pairs import parse_pairs
from xraydesk.cli.progress import TerminalBar, is_terminal
from xraydesk.durations import format_duration
from xraydesk.errors import Cancelled
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.path_args import path_text
from xraydesk.trainer import (
    DatasetReport,
    TrainConfig,
    TrainProgress,
    TrainResult,
    check_data,
    train_model,
)
from xraydesk.trainer.config import IMBALANCE, MODES, SCHEDULES
from xraydesk.trainer.metrics import format_with_interval, headline_metrics
from xraydesk.trainer.training import default_base, refuse_taken_name, small_test_warning

EXIT_OK, EXIT_USAGE, EXIT_CANCELLED = 0, 2, 130
MAX_PROBLEMS_SHOWN = 10
LOG_EVERY_S = 30.0  # progress lines when the output is not a terminal


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train or fine-tune a model on labelled images",
        description="Train a classifier on a folder with one subfolder per class, or on a CSV "
        "manifest (path,label[,patient]); several sources can be combined (NAME=PATH names a "
        "pool). The data is split by patient into train, validation and test; the model is "
        "saved in your model library. Ctrl-C stops cleanly; --resume continues.",
    )
    parser.add_argument(
        "data", nargs="+", type=path_text, metavar="DATA", help="folder or CSV manifest"
    )
    parser.add_argument("--name", required=True, help="name of the new model")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="quick",
        help="quick: frozen backbone + logistic regression head (minutes); "
        "full: all layers (hours on a CPU). Default: quick",
    )
    parser.add_argument("--epochs", type=int, default=10, help="full mode epochs (default 10)")
    parser.add_argument(
        "--lr", type=float, help="peak learning rate (default 2e-4 fine-tuning, 1e-3 from scratch)"
    )
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    parser.add_argument(
        "--size",
        type=int,
        metavar="PX",
        help="input size in pixels (default: the base model's, or 224)",
    )
    parser.add_argument(
        "--base",
        type=path_text,
        metavar="MODEL|scratch",
        help="start from this model (name or card path), or 'scratch' "
        "(default: the default bundled model, or scratch when none is installed)",
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument(
        "--resume", action="store_true", help="continue an unfinished run of this name"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard an unfinished run of this name and start again",
    )
    parser.add_argument(
        "--finish",
        action="store_true",
        help="end an unfinished full run now, keeping its best epoch",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="LABEL=CLASS",
        help="rename a label, e.g. --map bacterial=pneumonia (LABEL= drops it)",
    )
    parser.add_argument(
        "--classes", metavar="A,B,...", help="class order; images with other labels are left out"
    )
    parser.add_argument(
        "--equalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="histogram equalisation (default: as the base model; off from scratch)",
    )
    parser.add_argument(
        "--letterbox",
        action="store_true",
        help="keep the aspect ratio (pad) instead of stretching to a square",
    )
    parser.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    parser.add_argument(
        "--imbalance",
        choices=IMBALANCE,
        default="weights",
        help="class weights in the loss (default), balanced sampling, or none",
    )
    parser.add_argument(
        "--population-age",
        metavar="MIN-MAX",
        help="ages in years the model is for, e.g. 1-5, 18- (18 and over) or 1-5,18-; results "
        "for patients outside them carry an outside_population warning (default: the base "
        "model's population; not stated from scratch)",
    )
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--min-per-class", type=int, default=None, metavar="N")
    parser.add_argument(
        "--check", action="store_true", help="only check the data and print what was found"
    )
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    label_map = parse_pairs(args.map, "--map", "LABEL=CLASS")
    extra: dict[str, Any] = {}
    if args.min_per_class is not None:
        extra["min_per_class"] = args.min_per_class
    return TrainConfig(
        data=list(args.data),
        name=args.name,
        mode=args.mode,
        epochs=args.epochs,
        lr=args.lr,
        batch=args.batch,
        size=args.size,
        base=args.base,
        device=args.device,
        seed=args.seed,
        label_map=label_map,
        classes=[c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None,
        equalize=args.equalize,
        resize="letterbox" if args.letterbox else None,
        schedule=args.schedule,
        imbalance=args.imbalance,
        population_age=args.population_age,
        **extra,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    out = sys.stdout
    bar = TrainDisplay(sys.stderr)
    if args.check:
        report = check_data(config, bar)
        bar.finish()
        print_report(report, out)
        return EXIT_OK if report.ok else EXIT_USAGE
    config.validate()
    if not (args.resume or args.finish or args.restart):
        refuse_taken_name(config.name)  # before announcing anything about the base model
    if config.base is None and not (args.resume or args.finish):
        base = default_base()
        if base is None:
            print(
                "No bundled model is installed: training from scratch (random weights).", file=out
            )
        else:
            print(f"Starting from the bundled model {base.label}.", file=out)
    cancel = threading.Event()
    finished = threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = train_model(
                config,
                bar,
                cancel,
                resume=args.resume,
                restart=args.restart,
                finish_early=args.finish,
            )
        except BaseException as exc:  # handed to the main thread, which reports it
            outcome["error"] = exc
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="xraydesk-train", daemon=True)
    worker.start()
    # Wait on an Event, not Thread.join: a Ctrl-C that interrupts join() can leave the
    # thread looking finished while it still runs (seen with CPython 3.11).
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        cancel.set()
        print("\nxraydesk: stopping after this batch (keeping the checkpoint)...", file=sys.stderr)
        while not finished.wait(0.2):  # a second Ctrl-C ends at once (KeyboardInterrupt)
            pass
    worker.join()
    bar.finish()
    error = outcome.get("error")
    if isinstance(error, Cancelled):
        print(f"xraydesk: {error}", file=sys.stderr)
        print(
            f"Continue with: xraydesk train {' '.join(args.data)} --name {config.name} --resume",
            file=sys.stderr,
        )
        return EXIT_CANCELLED
    if error is not None:
        raise error
    print_result(outcome["result"], out)
    return EXIT_OK


# -- output ------------------------------------------------------------------------------------


class TrainDisplay:
    """The engine's progress: a bar on a terminal (epoch lines printed above it); on a
    pipe or in a file, one line per phase, per epoch and every ``LOG_EVERY_S`` seconds."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar = TerminalBar(stream, interval=0.2) if is_terminal(stream) else None
        self._last_phase = ""
        self._last_message = ""
        self._last_line = 0.0

    def __call__(self, p: TrainProgress) -> None:
        if p.record is not None:
            self._line(_epoch_line(p.record, p.epochs))
        if self.bar is not None:
            text = _bar_text(p)
            self.bar.draw(p, text, force=p.phase != self._last_phase)
        elif p.record is None:
            now = time.monotonic()
            # a new phase, a new step (the message changes: each fit of the head), the end
            # of a phase, or a while since the last line; not every batch of a long phase
            step = p.message != self._last_message or (p.total and p.done == p.total)
            if p.phase != self._last_phase or step or now - self._last_line >= LOG_EVERY_S:
                self._last_line = now
                self._line(_status_line(p))
        self._last_phase = p.phase
        self._last_message = p.message

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write_above(text, self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _bar_text(p: TrainProgress) -> str:
    parts = [p.message or p.phase]
    if p.step:
        parts.append(f"step {p.step}/{p.steps}")
    if p.loss is not None:
        parts.append(f"loss {p.loss:.3f}")
    if p.acc is not None:
        parts.append(f"acc {p.acc:.1%}")
    if p.rate:
        parts.append(f"{p.rate:.1f} img/s")
    if p.eta is not None:
        parts.append(f"ETA {format_duration(p.eta)}")
    return "  ".join(parts)


def _status_line(p: TrainProgress) -> str:
    """One log line (output to a file or pipe): what, how far, how fast, how long."""
    parts = [p.message or p.phase]
    if p.total:
        parts.append(f"{p.done}/{p.total}")
    if p.rate:
        parts.append(f"{p.rate:.1f} img/s")
    if p.eta is not None:
        parts.append(f"ETA {format_duration(p.eta)}")
    return "  ".join(parts)


def _epoch_line(record: dict[str, Any], epochs: int) -> str:
    return (
        f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.3f} "
        f"acc {record['train_acc']:.1%}  val loss {record['val_loss']:.3f} "
        f"acc {record['val_acc']:.1%}  ({format_duration(record['seconds'])})"
    )


def print_report(report: DatasetReport, out: TextIO) -> None:
    rows = [["CLASS", "IMAGES", *report.source_counts.keys()]]
    for cid in report.classes:
        per = [str(c.get(cid, 0)) for c in report.source_counts.values()]
        rows.append([f"{report.class_names.get(cid, cid)} ({cid})", str(report.counts[cid]), *per])
    _table(rows, out)
    print(f"{len(report.samples)} usable images, {report.patients} patients with an id", file=out)
    problems = report.problems()
    for line in problems[:MAX_PROBLEMS_SHOWN]:
        print(f"  - {line}", file=out)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        print(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more", file=out)


def print_result(result: TrainResult, out: TextIO) -> None:
    test = result.test
    card = result.card
    print(
        f"\nTest split: {test['n']} images; {_calibration_text(card)}",
        file=out,
    )
    rows = [["CLASS", "PRECISION", "RECALL (95 % CI)", "F1", "AUC (95 % CI)", "IMAGES"]]
    for cid, m in test["per_class"].items():
        rows.append(
            [
                card.display_names.get(cid, cid),
                f"{m['precision']:.3f}",
                format_with_interval(m["recall"], m.get("recall_ci95")),
                f"{m['f1']:.3f}",
                format_with_interval(m["auc"], m.get("auc_ci95")),
                str(m["support"]),
            ]
        )
    _table(rows, out)
    head = headline_metrics(test)
    print(
        f"accuracy {format_with_interval(head['accuracy'], head['accuracy_ci95'])}, n={head['n']}",
        file=out,
    )
    print(
        f"macro AUC {format_with_interval(head['macro_auc'], head['macro_auc_ci95'])}  "
        f"balanced accuracy {test['balanced_accuracy']:.3f}  ECE {test['ece']:.3f} "
        f"(uncalibrated {test['uncalibrated']['ece']:.3f})",
        file=out,
    )
    small = small_test_warning(test)
    if small:
        print(f"warning: {small}", file=out)
    for pair, auc in test.get("pairwise_auc", {}).items():
        if auc is not None:
            print(f"AUC {pair.replace('_vs_', ' vs ')}: {auc:.3f}", file=out)
    print("confusion matrix (rows: true, columns: predicted)", file=out)
    ids = test["classes"]
    _table(
        [["", *ids], *([ids[i], *map(str, row)] for i, row in enumerate(test["confusion_matrix"]))],
        out,
    )
    for pool, m in test.get("per_source", {}).items():
        auc = "-" if m["macro_auc"] is None else f"{m['macro_auc']:.3f}"
        print(
            f"pool {pool}: {m['n']} images, accuracy {m['accuracy']:.3f}, macro AUC {auc}", file=out
        )
    print(
        f"\nSaved {card.label} to {result.card_path} (split, history and curves in "
        f"{result.extras_dir}/) in {format_duration(result.seconds)} on {result.device}.",
        file=out,
    )
    print(f"Use it: xraydesk classify --model {card.name} IMAGE", file=out)


def _calibration_text(card) -> str:
    """Which temperature the model got and why (kept at 1.0 when scaling did not help)."""
    info = card.metrics.get("calibration") or {}
    if not info:
        return f"temperature {card.temperature:.2f}"
    before = info["validation_ece_uncalibrated"]
    after = info["validation_ece_fitted"]
    if info["applied"]:
        return f"temperature {card.temperature:.2f} (validation ECE {before:.3f} -> {after:.3f})"
    return (
        f"uncalibrated (temperature 1.00): the fitted temperature "
        f"{info['fitted_temperature']:.2f} did not lower the validation ECE "
        f"({after:.3f} against {before:.3f})"
    )


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out
        )
