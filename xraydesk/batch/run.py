"""Classifying a folder: the one batch pipeline behind ``xraydesk classify`` and the GUI panel.

Stages, overlapping so the model never waits for the disk:

1. discovery walks the inputs lazily, in a stable order (``discover.iter_images``);
   a side thread counts the images for the progress bar and the time left;
2. decode threads (``prefetch.ordered_map`` over ``prepare.Preparer``) hash each file
   (sha256), look the hash up in the results database (a file this model already
   classified is reused, not decoded), else decode and preprocess it, staying at most a
   couple of batches ahead;
3. the calling thread stacks the decoded inputs into batches and runs the classifier
   (``batch_model.BatchModel``: its device, precision and channels-last layout, pinned
   memory on CUDA; ``batch_model.CpuShare``: the CPU shared with decoding), optionally
   writes Grad-CAM PNGs from the image already in memory (``explain.export``), then
   stores the rows (``ledger.RunLedger``: committed before they are handed out, so a
   killed run loses no reported row) and yields them in input order.

Memory is bounded by the batch size and the prefetch depth, never by the folder size:
nothing is kept per row (tests/batch/test_memory_flat.py), the GUI's table reads a
recorded run's rows back from the database (``stored_rows``), and
tests/benchmarks/bench_batch_memory.py checks the peak over 50,000 files.
A bad file becomes an error row; a folder that disappears mid-run or a database that
cannot be written ends the run with ``BatchAborted``; ``cancel`` stops it within a second
(inference is interrupted between network blocks)."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xraydesk.batch.batch_model import BatchModel, CpuShare
from xraydesk.batch.database import (
    CANCELLED,
    COMPLETED,
    FAILED,
    StoreError,
    utc_now,
)
from xraydesk.batch.ledger import BatchAborted, RunLedger
from xraydesk.batch.memory import reuse_large_allocations
from xraydesk.batch.prefetch import Slots, ordered_map
from xraydesk.batch.prepare import Prepared, Preparer, content_hash
from xraydesk.batch.progress import BatchProgress, batch_progress
from xraydesk.batch.rows import ResultRow, describe_write_error
from xraydesk.batch.run_state import RunCounts, RunStatus
from xraydesk.batch.threads import Schedule, cpu_cores, runtime_cores
from xraydesk.batch.verdicts import prepared_verdicts
from xraydesk.classifier import Classifier
from xraydesk.errors import Cancelled, XRayDeskError
from xraydesk.imaging.discover import DiscoveryStats, SharedListings, count_images, iter_images
from xraydesk.progress import Rate
from xraydesk.trust.ood import OODStatistics

log = logging.getLogger(__name__)


def default_workers(device_type: str = "cpu", cores: int | None = None) -> int:
    """Decode threads: one per core the model runs on, on CPU (they take turns with the
    model, see ``threads.Schedule``); with a GPU the cores only decode, up to 8 of them."""
    if device_type == "cpu":
        return cores or cpu_cores()
    return max(1, min(8, os.cpu_count() or 1))


def model_cores(classifier: Classifier) -> int:
    """The CPU cores the model runs on: torch's thread count for the torch network, an
    exported runtime's own threads otherwise (``threads.runtime_cores`` says why)."""
    runtime = classifier.runtime
    return cpu_cores() if runtime is None else runtime_cores(runtime)


@dataclass
class BatchOptions:
    recursive: bool = False
    skip_known: bool = True  # reuse rows of files this model already classified
    record: bool = True  # store the run and its rows in the results database
    batch_size: int = 32
    workers: int | None = None  # decode threads; None: default_workers()
    prefetch: int | None = None  # files prepared ahead of the model; None: 2 batches
    cam_dir: Path | None = None  # write a Grad-CAM PNG per classified file here
    count_total: bool = True  # count the images first (in a side thread) for time left
    schedule: Schedule | None = None  # CPU threads and decode turns; None: measured per run
    optimise_model: bool = True  # fold batch norm, weights in the device's precision
    db_path: Path | None = None  # None: results.sqlite in the user data folder
    auto_orient: bool = False  # correct confidently rotated or inverted images in memory


@dataclass(frozen=True)
class RunSummary(RunCounts):
    """How a run ended (its counts: ``RunCounts``, as the database records them)."""

    run_id: int | None
    status: RunStatus  # completed | cancelled | failed
    missing: list[Path] = field(default_factory=list)  # inputs or subfolders not found
    message: str | None = None
    seconds: float = 0.0
    schedule: str | None = None  # how the CPU was shared, as measured best (None: GPU)


class BatchRun:
    """One batch run. Iterate ``rows()`` (once) to drive it; read ``summary`` afterwards.

    ``on_progress`` is called from the driving thread after each group of rows;
    ``cancel`` may be set from any thread.
    """

    def __init__(
        self,
        inputs: Sequence[str | os.PathLike[str]],
        classifier: Classifier,
        options: BatchOptions | None = None,
        *,
        cancel: threading.Event | None = None,
        on_progress: Callable[[BatchProgress], None] | None = None,
    ) -> None:
        self.inputs = [Path(p) for p in inputs]
        self.classifier = classifier
        self.options = options or BatchOptions()
        self.cancel = cancel if cancel is not None else threading.Event()
        self.on_progress = on_progress
        self.stats = DiscoveryStats()
        # each folder listed once for the walk and its count (``discover.SharedListings``)
        self._listings = SharedListings() if self.options.count_total else None
        self.summary: RunSummary | None = None
        self._ledger = RunLedger(classifier.card, self.stats)
        self._meter = Rate()
        self._folders = _FolderWatch(self.inputs)
        self._model: BatchModel | None = None
        self._cpu: CpuShare | None = None
        self._cores = model_cores(classifier)  # now, before this run changes the count
        self._workers = self.options.workers or default_workers(classifier.device.type, self._cores)
        self._slots = Slots(self._workers)
        self._started = False
        self._stop_reason: str | None = None
        self._ood = OODStatistics.from_card(classifier.card)  # None: the card has none

    # -- the run ------------------------------------------------------------------------------
    def rows(self) -> Iterator[ResultRow]:
        """The rows in input order, as they are finished (stored first when recording)."""
        if self._started:
            raise RuntimeError("a BatchRun can be iterated only once")
        self._started = True
        opts = self.options
        start = time.monotonic()
        if opts.record:
            self._ledger.open(opts.db_path, self.inputs, opts.recursive, self.classifier.card)
        stop_counting = _count_in_background(self.inputs, opts, self._ledger, self._listings)
        status, message = FAILED, None
        model = self._model = BatchModel(self.classifier, opts.optimise_model, opts.batch_size)
        hooks = model.interrupt_on(self.cancel)
        self._cpu = CpuShare(
            self.classifier.device.type,
            self._cores,
            self._slots,
            self._workers,
            opts.batch_size,
            opts.schedule,
            exported=self.classifier.runtime is not None,
        )
        try:
            with reuse_large_allocations():
                yield from self._drive()
            status = CANCELLED if self.cancel.is_set() else COMPLETED
        except Cancelled:
            status = CANCELLED
        except BatchAborted as exc:
            message = str(exc)
            raise
        except GeneratorExit:
            status, message = CANCELLED, "stopped by the caller"
            raise
        except KeyboardInterrupt:
            status, message = CANCELLED, "interrupted"
            raise
        except Exception as exc:
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            raise
        finally:
            for hook in hooks:
                hook.remove()
            self._cpu.restore()
            stop_counting.set()
            self._listings = None  # what the count kept for a walk stopped early goes
            if status == CANCELLED and self._stop_reason:
                message = self._stop_reason
            self.summary = self._summarise(status, message, time.monotonic() - start)
            self._ledger.close(status, message)

    def stop(self, reason: str | None = None) -> None:
        """Ask the run to end (from any thread); ``reason`` is recorded with it."""
        if reason and self._stop_reason is None:
            self._stop_reason = reason
        self.cancel.set()

    def run(self) -> RunSummary:
        """Drive the run to its end without looking at the rows (they are in the database)."""
        for _ in self.rows():
            pass
        assert self.summary is not None
        return self.summary

    @property
    def run_id(self) -> int | None:
        """The run's id in the results database (None until started, or when not recorded)."""
        return self._ledger.run_id

    def _drive(self) -> Iterator[ResultRow]:
        opts = self.options
        batch_size = max(1, opts.batch_size)
        depth = opts.prefetch or (batch_size if opts.cam_dir else 2 * batch_size)
        max_pending = 4 * batch_size  # reused/error rows waiting behind a batch being filled
        pending: list[Prepared] = []
        decoded = 0
        last_flush = time.monotonic()
        self._report()
        prepare = Preparer(
            self.classifier,
            self._ledger.store,
            self._ledger.key,
            self.cancel,
            skip_known=opts.skip_known,
            keep_xray=opts.cam_dir is not None,
            unreadable=self.stats.unreadable,
            auto_orient=opts.auto_orient,
        )
        stream = ordered_map(
            prepare,
            _with_unreadable_folders(
                iter_images(self.inputs, opts.recursive, self.stats, self._listings), self.stats
            ),
            workers=self._workers,
            depth=max(1, depth),
            cancel=self.cancel,
            slots=self._slots,
        )
        try:
            for item in stream:
                gone = self._folders.gone(item.path) if item.missing else None
                if gone is not None:
                    raise BatchAborted(self._gone_message(gone))
                pending.append(item)
                decoded += item.tensor is not None
                waited = time.monotonic() - last_flush
                if (
                    decoded >= batch_size
                    or len(pending) >= max_pending
                    or (decoded == 0 and (len(pending) >= batch_size or waited >= 1.0))
                ):
                    yield from self._flush(pending)
                    pending, decoded, last_flush = [], 0, time.monotonic()
        finally:
            stream.close()  # stops the decode threads now, not when garbage-collected
        if self.cancel.is_set():
            return
        if pending:
            yield from self._flush(pending)
        gone = self._folders.vanished(self.stats.missing)
        if gone is not None:
            raise BatchAborted(self._gone_message(gone))

    # -- the model ------------------------------------------------------------------------
    def _flush(self, pending: list[Prepared]) -> Iterator[ResultRow]:
        """Classify the decoded items of ``pending``, store every row, then yield them."""
        todo = [item for item in pending if item.tensor is not None]
        if todo:
            self._classify(todo)
        rows = [item.row for item in pending if item.row is not None]
        self._ledger.add(rows)
        self._report()
        yield from rows

    def _classify(self, todo: list[Prepared]) -> None:
        assert self._model is not None and self._cpu is not None
        model = self._model
        tensors = [item.tensor for item in todo if item.tensor is not None]
        out, seconds = self._cpu.run_batch(len(todo), lambda: model.classify_outputs(tensors))
        share = seconds / len(todo)
        stamp = utc_now()
        ids = self.classifier.class_ids
        # the one verdict every front door gives (trust.verdict), as Spark's workers give it
        verdicts = prepared_verdicts(self.classifier, out, todo, self._ood)
        for item, verdict in zip(todo, verdicts, strict=True):
            row = ResultRow(
                path=item.path,
                model=self.classifier.card.label,
                content_hash=item.sha256,
                seconds=item.seconds + share,
                classified_at=stamp,
                frames=item.metadata.frames if item.metadata is not None else None,
            )
            row.take_verdict(verdict, ids)
            item.row, item.tensor, item.metadata = row, None, None
        if self.options.cam_dir is not None:
            for item in todo:
                _write_cam(self.classifier, item, self.options.cam_dir)
                item.xray = None

    # -- bookkeeping ----------------------------------------------------------------------
    def _summarise(self, status: RunStatus, message: str | None, seconds: float) -> RunSummary:
        return RunSummary(
            run_id=self.run_id,
            status=status,
            total=self._ledger.total,
            classified=self._ledger.counts["classified"],
            reused=self._ledger.counts["reused"],
            failed=self._ledger.counts["failed"],
            not_images=self.stats.not_images,
            hidden=self.stats.hidden,
            missing=list(self.stats.missing),
            message=message,
            seconds=seconds,
            schedule=self._cpu.best if self._cpu is not None else None,
        )

    def _report(self) -> None:
        done = self._ledger.done
        self._meter.update(done)
        if self.on_progress is not None:
            c = self._ledger.counts
            total = self._ledger.total
            if total is not None and total < done:  # files added while counting
                total = done
            self.on_progress(
                batch_progress(self._meter, done, total, c["classified"], c["reused"], c["failed"])
            )

    def _gone_message(self, folder: Path) -> str:
        gone = "the folder disappeared during the run (deleted, renamed or unmounted)"
        return f"{folder}: {gone}; {self._ledger.saved_note()}"


def _write_cam(classifier: Classifier, item: Prepared, cam_dir: Path) -> None:
    """The Grad-CAM PNG of a classified file; only a full disk ends the run. A row given
    no class (indeterminate, withheld) gets none: the map would name the class held back."""
    from xraydesk.explain.export import cam_filename, write_cam_png

    row = item.row
    if row is None or not row.ok or row.prediction is None or item.xray is None:
        return
    start = time.perf_counter()
    try:
        write_cam_png(classifier, item.path, cam_dir, row.prediction, xray=item.xray)
    except Cancelled:
        raise  # the run was cancelled during the Grad-CAM pass: not this file's fault
    except XRayDeskError as exc:
        log.warning("%s: Grad-CAM not computed (%s)", item.path, exc)
        return
    except OSError as exc:
        out = cam_dir / cam_filename(item.path)
        if exc.errno == errno.ENOSPC:
            raise BatchAborted(describe_write_error(out, exc, "the Grad-CAM image")) from exc
        log.warning("%s: Grad-CAM not written (%s)", out, exc.strerror or exc)
    row.seconds += time.perf_counter() - start


def _with_unreadable_folders(paths: Iterator[Path], stats: DiscoveryStats) -> Iterator[Path]:
    """The walk's files, each folder that could not be listed in its place (the decode
    stage makes its error row): the run goes on past it, and the user sees it."""
    unreadable = stats.unreadable
    reported = 0
    for path in paths:
        if len(unreadable) > reported:
            yield from list(unreadable)[reported:]
            reported = len(unreadable)
        yield path
    yield from list(unreadable)[reported:]


def _count_in_background(
    inputs: list[Path], opts: BatchOptions, ledger: RunLedger, listings: SharedListings | None
) -> threading.Event:
    """Count the images in a side thread (for the time left); set the event to stop it.
    ``listings``: shared with the run's walk, so no folder is listed twice."""
    stop = threading.Event()

    def count() -> None:
        try:
            ledger.total = count_images(inputs, opts.recursive, stop, listings)
        except Exception:  # counting is a nicety: progress without a total still works
            log.debug("counting the images failed", exc_info=True)

    if opts.count_total:
        threading.Thread(target=count, name="xraydesk-count", daemon=True).start()
    return stop


class _FolderWatch:
    """Tells a file that vanished (an error row on its own) from a folder that vanished
    (deleted, renamed, a drive unplugged: the end of the run)."""

    def __init__(self, inputs: list[Path]) -> None:
        self.roots = [p for p in inputs if p.is_dir()]

    def gone(self, path: Path) -> Path | None:
        """The folder gone with ``path`` (a file found missing), or None."""
        if not any(_is_within(path, root) for root in self.roots):
            return None
        if path.parent.is_dir():
            return None
        return next((r for r in self.roots if not r.is_dir()), path.parent)

    def vanished(self, missing: list[Path]) -> Path | None:
        """A subfolder of the inputs that vanished before it was listed, or None."""
        return next((f for f in missing if any(_is_within(f, r) for r in self.roots)), None)


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def classify_paths(paths: Iterable[str | Path], classifier: Classifier) -> Iterator[ResultRow]:
    """One ResultRow per path, in order, through the batch pipeline without the database."""
    options = BatchOptions(record=False, skip_known=False, count_total=False)
    yield from BatchRun(list(paths), classifier, options).rows()


__all__ = [
    "BatchAborted",
    "BatchOptions",
    "BatchRun",
    "RunSummary",
    "StoreError",
    "classify_paths",
    "content_hash",
    "default_workers",
    "model_cores",
]
