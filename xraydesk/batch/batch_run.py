"""Classifying a folder: the one batch pipeline behind ``xraydesk classify`` and the GUI panel.

Stages, overlapping so the model never waits for the disk:

1. discovery walks the inputs lazily, in a stable order (``discover.iter_images``);
   a side thread counts the images for the progress bar and the time left;
2. decode threads (``prefetch.ordered_map``) hash each file (sha256), look the hash up in
   the results database (a file this model already classified is reused, not decoded),
   else decode and preprocess it, staying at most a couple of batches ahead;
3. the calling thread stacks the decoded inputs into batches and runs the classifier
   (its device, autocast precision and channels-last layout; pinned memory on CUDA),
   optionally writes Grad-CAM PNGs from the image already in memory, then stores the
   rows (committed before they are handed out, so a killed run loses no reported row)
   and yields them in input order.

Memory is bounded by the batch size and the prefetch depth, never by the folder size.
A bad file becomes an error row; a folder that disappears mid-run or a database that
cannot be written ends the run with ``BatchAborted``; ``cancel`` stops it within a second
(inference is interrupted between network blocks).
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from xraydesk.batch.batch_model import BatchModel
from xraydesk.batch.memory import reuse_large_allocations
from xraydesk.batch.prefetch import Slots, ordered_map
from xraydesk.batch.progress import BatchProgress, WindowedRate
from xraydesk.batch.results import ResultRow, describe_write_error
from xraydesk.batch.store import (
    CANCELLED,
    COMPLETED,
    FAILED,
    ResultStore,
    StoreError,
    model_key,
    utc_now,
)
from xraydesk.batch.threads import Schedule, Tuner, cpu_cores, schedule_candidates
from xraydesk.errors import ImageLoadError, XRayDeskError
from xraydesk.files import sha256_file
from xraydesk.imaging import load_xray
from xraydesk.imaging.discover import DiscoveryStats, count_images, iter_images
from xraydesk.imaging.xray import XRay
from xraydesk.model.classifier import Classifier

log = logging.getLogger(__name__)

FILE_NOT_FOUND = "file not found"


class BatchAborted(XRayDeskError):
    """The run ended early for a reason that is not one file's fault (folder gone, disk
    full). The rows finished before it are in the database."""


class _Cancelled(Exception):
    """Raised inside the network's forward pass to drop a batch when the run is cancelled."""


def default_workers(device_type: str = "cpu") -> int:
    """Decode threads: one per core on CPU (they take turns with the model, see
    ``threads.Schedule``); with a GPU the cores only decode, up to 8 of them."""
    if device_type == "cpu":
        return cpu_cores()
    return max(1, min(8, os.cpu_count() or 1))


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


@dataclass
class RunSummary:
    run_id: int | None
    status: str  # completed | cancelled | failed
    total: int | None
    classified: int
    reused: int
    failed: int
    not_images: int
    hidden: int
    missing: list[Path] = field(default_factory=list)  # inputs or subfolders not found
    message: str | None = None
    seconds: float = 0.0
    schedule: str | None = None  # how the CPU was shared, as measured best (None: GPU)

    @property
    def done(self) -> int:
        return self.classified + self.reused + self.failed


@dataclass
class _Prepared:
    """What a decode thread hands the model: an input tensor, or an already final row."""

    path: Path
    sha256: str | None = None
    tensor: torch.Tensor | None = None
    xray: XRay | None = None  # kept only for Grad-CAM
    row: ResultRow | None = None  # error or reused row: nothing left to compute
    seconds: float = 0.0
    missing: bool = False


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
        self.run_id: int | None = None
        self.summary: RunSummary | None = None
        self._key = model_key(classifier.card)
        self._label = classifier.card.label
        self._store: ResultStore | None = None
        self._total: int | None = None
        self._counts = {"classified": 0, "reused": 0, "failed": 0}
        self._seq = 0
        self._meter = WindowedRate()
        self._roots = [p for p in self.inputs if p.is_dir()]
        self._pinned: torch.Tensor | None = None
        self._model: BatchModel | None = None
        self._tuner: Tuner[Schedule] | None = None
        self._cores = cpu_cores()  # now, before this run changes the thread count
        self._workers = self.options.workers or default_workers(classifier.device.type)
        self._slots = Slots(self._workers)
        self._last_batch_end: float | None = None
        self._full_batch_seen = False
        self._started = False
        self._stop_reason: str | None = None

    # -- the run ------------------------------------------------------------------------------
    def rows(self) -> Iterator[ResultRow]:
        """The rows in input order, as they are finished (stored first when recording)."""
        if self._started:
            raise RuntimeError("a BatchRun can be iterated only once")
        self._started = True
        opts = self.options
        start = time.monotonic()
        if opts.record:
            store = ResultStore(opts.db_path)
            try:
                inputs = [str(p.absolute()) for p in self.inputs]
                self.run_id = store.start_run(inputs, opts.recursive, self.classifier.card)
            except BaseException:
                store.close()
                raise
            self._store = store
        stop_counting = threading.Event()
        if opts.count_total:
            threading.Thread(
                target=self._count, args=(stop_counting,), name="xraydesk-count", daemon=True
            ).start()
        status, message = FAILED, None
        self._model = BatchModel(self.classifier, opts.optimise_model)
        hooks = self._install_cancel_hooks(self._model.network)
        threads_before = torch.get_num_threads()
        if self.classifier.device.type == "cpu":
            candidates = [opts.schedule] if opts.schedule else schedule_candidates(self._cores)
            self._tuner = Tuner(candidates)
        try:
            with reuse_large_allocations():
                yield from self._drive()
            status = CANCELLED if self.cancel.is_set() else COMPLETED
        except _Cancelled:
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
            if torch.get_num_threads() != threads_before:
                torch.set_num_threads(threads_before)
            stop_counting.set()
            if status == CANCELLED and self._stop_reason:
                message = self._stop_reason
            self.summary = RunSummary(
                run_id=self.run_id,
                status=status,
                total=self._total,
                classified=self._counts["classified"],
                reused=self._counts["reused"],
                failed=self._counts["failed"],
                not_images=self.stats.not_images,
                hidden=self.stats.hidden,
                missing=list(self.stats.missing),
                message=message,
                seconds=time.monotonic() - start,
                schedule=str(self._tuner.best) if self._tuner is not None else None,
            )
            self._close_store(status, message)

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

    def _drive(self) -> Iterator[ResultRow]:
        opts = self.options
        batch_size = max(1, opts.batch_size)
        depth = opts.prefetch or (batch_size if opts.cam_dir else 2 * batch_size)
        max_pending = 4 * batch_size  # reused/error rows waiting behind a batch being filled
        pending: list[_Prepared] = []
        decoded = 0
        last_flush = time.monotonic()
        self._report()
        stream = ordered_map(
            self._prepare,
            iter_images(self.inputs, opts.recursive, self.stats),
            workers=self._workers,
            depth=max(1, depth),
            cancel=self.cancel,
            slots=self._slots,
        )
        try:
            for item in stream:
                if item.missing:
                    self._check_folder(item.path)
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
        for folder in self.stats.missing:  # a subfolder that vanished before it was listed
            if any(_is_within(folder, root) for root in self._roots):
                raise BatchAborted(self._gone_message(folder))

    # -- decode threads -------------------------------------------------------------------
    def _prepare(self, path: Path) -> _Prepared:
        """Hash, look up, decode and preprocess one file; never raises for a bad file."""
        if self.cancel.is_set():
            return _Prepared(path, row=self._error_row(path, "cancelled"))
        start = time.perf_counter()
        try:
            sha = content_hash(path)
        except OSError as exc:
            cause = _read_error(exc)
            return _Prepared(
                path,
                row=self._error_row(path, cause, time.perf_counter() - start),
                missing=isinstance(exc, FileNotFoundError),
            )
        if self._store is not None and self.options.skip_known:
            try:
                known = self._store.known_row(self._key, sha)
            except sqlite3.Error as exc:  # a busy or damaged database: classify it anyway
                log.warning("results lookup failed for %s: %s", path, exc)
                known = None
            if known is not None:
                known.path, known.model = path, self._label
                return _Prepared(path, sha256=sha, row=known)
        try:
            xray = load_xray(path)
            tensor = self.classifier.preprocess(xray)
        except ImageLoadError as exc:
            row = self._error_row(path, exc.cause, time.perf_counter() - start, sha)
            return _Prepared(path, sha256=sha, row=row, missing=exc.cause == FILE_NOT_FOUND)
        except Exception as exc:  # a reader or preprocessing bug must not end the run
            log.warning("unexpected failure on %s", path, exc_info=True)
            cause = f"unexpected error: {type(exc).__name__}: {exc}"
            return _Prepared(path, sha256=sha, row=self._error_row(path, cause, 0.0, sha))
        keep = xray if self.options.cam_dir is not None else None
        return _Prepared(path, sha, tensor, keep, seconds=time.perf_counter() - start)

    def _error_row(
        self, path: Path, cause: str, seconds: float = 0.0, sha: str | None = None
    ) -> ResultRow:
        return ResultRow(
            path=path,
            model=self._label,
            error=cause,
            content_hash=sha,
            seconds=seconds,
            classified_at=utc_now(),
        )

    # -- the model ------------------------------------------------------------------------
    def _flush(self, pending: list[_Prepared]) -> Iterator[ResultRow]:
        """Classify the decoded items of ``pending``, store every row, then yield them."""
        todo = [item for item in pending if item.tensor is not None]
        if todo:
            self._classify(todo)
        rows = [item.row for item in pending if item.row is not None]
        for row in rows:
            kind = "failed" if not row.ok else "reused" if row.reused else "classified"
            self._counts[kind] += 1
        self._store_rows(rows)
        self._report()
        yield from rows

    def _classify(self, todo: list[_Prepared]) -> None:
        schedule = self._tuner.choose() if self._tuner is not None else None
        if schedule is not None:
            if schedule.threads != torch.get_num_threads():
                torch.set_num_threads(schedule.threads)  # this thread's OpenMP team only
            free = max(1, self._cores - schedule.threads)
            self._slots.set_limit(0 if schedule.gated else free)
        tensors = [item.tensor for item in todo]
        full = self.options.batch_size
        if self._full_batch_seen and len(tensors) < full:
            # Keep the one input shape of the run: a new shape costs new kernels and a
            # second set of activation buffers (measured +60 MB for a last batch of 28).
            tensors += tensors[-1:] * (full - len(tensors))
        assert self._model is not None
        start = time.perf_counter()
        try:
            probs = self._model.probabilities(self._stack(tensors))[: len(todo)]
        finally:
            if schedule is not None and schedule.gated:
                self._slots.set_limit(self._workers)  # decode in the gap before the next batch
        end = time.perf_counter()
        share = (end - start) / len(todo)
        if len(todo) == full:
            if self._tuner is not None and self._last_batch_end is not None and schedule:
                # batch end to batch end: inference, waiting for decoding, storing rows
                self._tuner.record(schedule, (end - self._last_batch_end) / full)
            self._full_batch_seen = True
        self._last_batch_end = end
        stamp = utc_now()
        ids = self.classifier.class_ids
        for item, p in zip(todo, probs, strict=True):
            prediction = self.classifier.prediction_from(p)
            item.row = ResultRow(
                path=item.path,
                model=self._label,
                prediction=prediction.predicted,
                probabilities={cid: prediction.probabilities[cid] for cid in ids},
                content_hash=item.sha256,
                seconds=item.seconds + share,
                classified_at=stamp,
            )
            item.tensor = None
        if self.options.cam_dir is not None:
            for item in todo:
                self._write_cam(item)
                item.xray = None

    def _stack(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """One input batch; on CUDA in a reused pinned buffer so the copy is asynchronous."""
        if self.classifier.device.type != "cuda":
            return torch.stack(tensors)
        shape = (self.options.batch_size, *tensors[0].shape)
        if self._pinned is None or tuple(self._pinned.shape) != shape:
            self._pinned = torch.empty(shape, dtype=tensors[0].dtype, pin_memory=True)
        return torch.stack(tensors, out=self._pinned[: len(tensors)])

    def _write_cam(self, item: _Prepared) -> None:
        from xraydesk.explain import blend_overlay, grad_cam
        from xraydesk.explain.export import cam_filename

        row, xray, cam_dir = item.row, item.xray, self.options.cam_dir
        if row is None or xray is None or cam_dir is None:
            return
        start = time.perf_counter()
        try:
            cam = grad_cam(self.classifier, xray, row.prediction)
            rgb = blend_overlay(xray.render(), cam.heatmap, 0.45)
        except XRayDeskError as exc:
            log.warning("%s: Grad-CAM not computed (%s)", item.path, exc)
            return
        out = cam_dir / cam_filename(item.path)
        try:
            cam_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(out)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BatchAborted(describe_write_error(out, exc, "the Grad-CAM image")) from exc
            log.warning("%s: Grad-CAM not written (%s)", out, exc.strerror or exc)
        row.seconds += time.perf_counter() - start

    def _install_cancel_hooks(self, network: torch.nn.Module) -> list[Any]:
        """Let a cancel interrupt a forward pass between layers (a batch of 32 can take
        several seconds on a busy CPU). Only this run's thread is interrupted: the network
        may be the viewer's own (when it could not be folded)."""
        owner = threading.get_ident()

        def check(_module: torch.nn.Module, _inputs: object) -> None:
            if self.cancel.is_set() and threading.get_ident() == owner:
                raise _Cancelled()

        leaves = [m for m in network.modules() if next(m.children(), None) is None]
        return [m.register_forward_pre_hook(check) for m in leaves]

    # -- bookkeeping ----------------------------------------------------------------------
    def _count(self, stop: threading.Event) -> None:
        try:
            self._total = count_images(self.inputs, self.options.recursive, stop)
        except Exception:  # counting is a nicety: progress without a total still works
            log.debug("counting the images failed", exc_info=True)

    def _store_rows(self, rows: list[ResultRow]) -> None:
        if self._store is None or self.run_id is None:
            self._seq += len(rows)
            return
        try:
            self._store.add_rows(self.run_id, self._key, self._seq, rows)
            self._store.update_counts(self.run_id, **self._run_counts())
            self._store.commit()
        except sqlite3.Error as exc:
            self._store.rollback()
            raise BatchAborted(
                f"{self._store.path}: the results database could not be written ({exc}); "
                f"{self._seq} rows finished before are safe in it"
            ) from exc
        self._seq += len(rows)

    def _run_counts(self) -> dict[str, int | None]:
        return {
            "total": self._total,
            **self._counts,
            "not_images": self.stats.not_images,
            "hidden": self.stats.hidden,
        }

    def _report(self) -> None:
        done = sum(self._counts.values())
        self._meter.update(done)
        if self.on_progress is not None:
            c = self._counts
            total = self._total
            if total is not None and total < done:  # files added while counting
                total = done
            self.on_progress(
                self._meter.progress(done, total, c["classified"], c["reused"], c["failed"])
            )

    def _check_folder(self, path: Path) -> None:
        """A file that vanished: an error row on its own, the end of the run when its whole
        folder is gone (deleted, renamed, a drive unplugged)."""
        if not any(_is_within(path, root) for root in self._roots):
            return
        if not path.parent.is_dir():
            gone = next((r for r in self._roots if not r.is_dir()), path.parent)
            raise BatchAborted(self._gone_message(gone))

    def _gone_message(self, folder: Path) -> str:
        saved = (
            f"the {self._seq} files finished are saved in the results database "
            f"(run {self.run_id}); run again to classify the rest"
            if self.run_id is not None
            else f"{self._seq} files were finished"
        )
        gone = "the folder disappeared during the run (deleted, renamed or unmounted)"
        return f"{folder}: {gone}; {saved}"

    def _close_store(self, status: str, message: str | None) -> None:
        store, self._store = self._store, None
        if store is None or self.run_id is None:
            return
        try:
            store.update_counts(self.run_id, **self._run_counts())
            store.finish_run(self.run_id, status, message)
        except sqlite3.Error as exc:  # the rows are committed; only the status is lost
            log.warning("could not record the end of batch run %s: %s", self.run_id, exc)
        finally:
            store.close()


content_hash = sha256_file  # results are keyed by the sha256 of each file's bytes


def _read_error(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return FILE_NOT_FOUND
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not an image file"
    if isinstance(exc, PermissionError):
        return "permission denied: the file cannot be read"
    return f"cannot read the file ({exc.strerror or exc})"


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
]
