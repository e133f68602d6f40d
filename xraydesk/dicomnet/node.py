"""The DICOM node: a Storage SCP that stores, classifies and lists what a PACS sends.

Flow of one object: an association is accepted only from an allowed calling AE title
*and* an allowed address (``NodeConfig``); C-ECHO is answered; a C-STORE is decoded just
enough to read its UIDs and a few descriptive fields, the bytes are written as received
under ``<data folder>/dicom/<Study>/<Series>/<SOP>.dcm`` (0600), and a worklist row is
committed (status ``received``) before the PACS gets its success status. A classifier
thread then takes everything received so far as one group and runs it through the batch
engine (``xraydesk.batch.BatchRun``: the same decoding, batching and fused network as
``xraydesk classify``), committing each row's result to the worklist as it comes. With
``auto_send`` set, a third thread makes the SR and heat-map Secondary Capture of each
classified image and C-STOREs them to that PACS.

Why groups: the batch engine takes its inputs up front, and images arrive one by one.
Taking whatever queued up while the previous group ran keeps batches full under load
(throughput close to the engine on a folder, see the benchmark) and the latency of a
lone image at one forward pass. A group over one batch is cut to whole batches
(``whole_batches``): on torch the engine pads a run's last batch, and the rest goes with
the next.

Robustness: a malformed object is answered with a failure status (0xC210 "cannot
understand") and logged without its content; it never stops the node. Its fields are read
raw (``received``), so pydicom never logs a value. Idle connections, too many
associations and over-size objects are handled by ``guard`` (0xA700 for the latter).
Logs name the calling AE title and the status, never a patient, an accession number or
a UID.
"""

from __future__ import annotations

import collections
import errno
import logging
import queue
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from xraydesk import paths
from xraydesk.batch import BatchAborted, BatchOptions, BatchRun
from xraydesk.classifier import Classifier
from xraydesk.dicomnet.config import ConfigError, NodeConfig, RemoteNode
from xraydesk.dicomnet.guard import AssociationGuard
from xraydesk.dicomnet.instance_files import (
    InvalidUID,
    instance_path,
    make_private_dirs,
    write_private,
)
from xraydesk.dicomnet.instance_files import store_root as default_store_root
from xraydesk.dicomnet.received import (
    UnreadableObject,
    not_a_chest_image,
    quiet_pynetdicom,
    work_item,
)
from xraydesk.dicomnet.result_objects import MANUFACTURER
from xraydesk.dicomnet.tls import server_context
from xraydesk.dicomnet.worklist import (
    CLASSIFIED,
    FAILED,
    SKIPPED,
    WorkItem,
    Worklist,
    WorklistError,
)
from xraydesk.errors import XRayDeskError
from xraydesk.logs import exception_site
from xraydesk.printable import printable

log = logging.getLogger(__name__)
quiet_pynetdicom()

STATUS_OK = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC210
STATUS_OUT_OF_RESOURCES = 0xA700
MAX_GROUP = 256
MAX_PDU = 4 * 1024 * 1024
RESULTS_DIR = "dicom-results"


@dataclass
class NodeStats:
    """Throughput counters (monotonic seconds) for the benchmark and the status line."""

    first_byte: float | None = None  # the first association of this node opened
    received: int = 0
    rows: int = 0  # classified or failed rows committed
    refused: int = 0
    last_row: float | None = None

    def rate(self) -> float:
        if self.first_byte is None or self.last_row is None or self.rows == 0:
            return 0.0
        return self.rows / max(self.last_row - self.first_byte, 1e-9)


class StorageNode:
    """Run with ``start()`` / ``stop()`` (or as a context manager)."""

    def __init__(
        self,
        config: NodeConfig,
        classifier: Classifier | None,
        *,
        worklist_path: Path | None = None,
        store_root: Path | None = None,
        on_item: Callable[[WorkItem], None] | None = None,
        batch_size: int = 32,
    ) -> None:
        if not config.accepted_ae_titles:
            raise ConfigError(
                "no calling AE title is allowed, so every association would be refused: "
                "list the PACS's title (--allow-ae, or allowed_ae_titles in dicomnet.json)"
            )
        self.config = config
        self.classifier = classifier
        self.worklist = Worklist(worklist_path)
        self.store_root = store_root or default_store_root()
        make_private_dirs(self.store_root)
        self.on_item = on_item
        self.batch_size = batch_size
        self.stats = NodeStats()
        auto = config.auto_send
        self.send_to: RemoteNode | None = config.node(auto) if auto else None
        self._queue: queue.Queue[tuple[int, Path, float]] = queue.Queue()
        self._send_queue: queue.Queue[int] = queue.Queue()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._busy = 0  # items received and not yet given a result row
        self._marks: dict[int, float] = {}  # association id -> when its next object began
        self._server: Any = None
        self.guard = AssociationGuard(config, MAX_PDU, on_refused=self._count_refusal)
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "the node is not started"
        return int(self._server.server_address[1])

    def start(self) -> int:
        """Bind and serve (returns the port: ``config.port`` 0 picks a free one)."""
        ae = AE(ae_title=self.config.ae_title)
        ae.require_calling_aet = self.config.accepted_ae_titles
        ae.require_called_aet = True
        self.guard.configure(ae)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ssl = server_context(self.config.tls) if self.config.tls else None
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_CONN_OPEN, self._on_open),
            (evt.EVT_CONN_CLOSE, self._on_close),
            *self.guard.handlers(),
        ]
        server_cls = self.guard.server_class()
        try:
            server = ae.make_server(
                (self.config.host, self.config.port),
                ae_title=self.config.ae_title,
                ssl_context=ssl,
                evt_handlers=handlers,
                server_class=server_cls,
            )
        except OSError as exc:
            raise XRayDeskError(
                f"cannot listen on {self.config.host}:{self.config.port} ({exc.strerror or exc})"
            ) from exc
        self._server = server
        self._ae = ae
        self._spawn(server.serve_forever, "xraydesk-dicom-server")
        if self.classifier is not None:
            self._spawn(self._classify_loop, "xraydesk-dicom-classify")
            if self.send_to is not None:
                self._spawn(self._send_loop, "xraydesk-dicom-send")
            self._requeue_pending()
        return self.port

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        """Start one of the node's background services (the DICOM server, the classify and
        send queues) as a named daemon thread. These are a network node's services, not GUI
        work, so they are plain threads rather than GUI jobs; ``stop`` ends and joins them.
        A service that dies is logged by name and exception type only (a message could
        carry a header value), never as a bare traceback on stderr."""

        def service() -> None:
            try:
                target()
            except Exception as exc:
                log.error("%s stopped on an unexpected %s", name, exception_site(exc))

        thread = threading.Thread(target=service, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            # made by make_server, not start_server: the AE does not list it, so stop
            # it as the socketserver it is (pynetdicom's shutdown would look it up)
            socketserver.BaseServer.shutdown(self._server)
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        self.worklist.close()

    def __enter__(self) -> StorageNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every received image has its result row (tests, benchmark)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # -- association events (server threads) -----------------------------------------------
    def _on_open(self, event: Any) -> None:
        now = time.monotonic()
        if self.stats.first_byte is None:
            self.stats.first_byte = now
        self._marks[id(event.assoc)] = now

    def _on_close(self, event: Any) -> None:
        self._marks.pop(id(event.assoc), None)

    def _count_refusal(self) -> None:
        self.stats.refused += 1

    def _on_store(self, event: Any) -> int:
        started = self._marks.get(id(event.assoc), time.monotonic())
        calling = printable(str(event.assoc.requestor.ae_title).strip())
        if self.guard.oversize(event.assoc):
            self.guard.refuse_oversize(calling)
            self._marks[id(event.assoc)] = time.monotonic()
            return STATUS_OUT_OF_RESOURCES
        try:
            ds: Dataset = event.dataset
            item = work_item(ds, calling)
            reason = not_a_chest_image(ds, item, MANUFACTURER)
            data = None if reason else event.encoded_dataset()
        except (InvalidUID, UnreadableObject, Exception) as exc:
            self.stats.refused += 1
            known = isinstance(exc, InvalidUID | UnreadableObject)
            what = exc if known else type(exc).__name__
            log.warning("C-STORE from %s refused: the object cannot be read (%s)", calling, what)
            self._marks[id(event.assoc)] = time.monotonic()
            return STATUS_CANNOT_UNDERSTAND
        try:
            if reason:
                item.status, item.error = SKIPPED, reason
                self.worklist.add(item)
                return STATUS_OK
            assert data is not None
            path = instance_path(self.store_root, item.study_uid, item.series_uid, item.sop_uid)
            write_private(path, data)
            item.path = path
            with self._idle:
                self._busy += 1
            try:
                self.worklist.add(item)
            except BaseException:
                self._done_one()
                raise
        except InvalidUID as exc:
            self.stats.refused += 1
            log.warning("C-STORE from %s refused: %s", calling, exc)
            return STATUS_CANNOT_UNDERSTAND
        except (OSError, WorklistError) as exc:
            full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
            log.error(
                "C-STORE from %s not stored: %s",
                calling,
                "disk full" if full else type(exc).__name__,
            )
            return STATUS_OUT_OF_RESOURCES
        finally:
            self._marks[id(event.assoc)] = time.monotonic()
        self.stats.received += 1
        assert item.id is not None and item.path is not None
        if self.classifier is None:
            self._done_one()
        else:
            self._queue.put((item.id, item.path, started))
        self._notify(item)
        return STATUS_OK

    def _notify(self, item: WorkItem) -> None:
        if self.on_item is not None:
            try:
                self.on_item(item)
            except Exception:
                log.exception("worklist callback failed")

    def _done_one(self) -> None:
        with self._idle:
            self._busy -= 1
            if self._busy <= 0:
                self._busy = 0
                self._idle.notify_all()

    def _requeue_pending(self) -> None:
        """Images a previous node received but did not classify (it was stopped)."""
        for item in self.worklist.iter_pending():
            if item.id is not None and item.path is not None and item.path.is_file():
                with self._idle:
                    self._busy += 1
                self._queue.put((item.id, item.path, time.monotonic()))

    # -- classification (one thread) -------------------------------------------------------
    def _classify_loop(self) -> None:
        carried: list[tuple[int, Path, float]] = []  # received, left for the next group
        while not self._stop.is_set():
            if not carried:
                try:
                    carried = [self._queue.get(timeout=0.2)]
                except queue.Empty:
                    continue
            group = carried
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            group, carried = whole_batches(group, self.batch_size)
            self.classify_group(group)

    def classify_group(self, group: list[tuple[int, Path, float]]) -> None:
        """Classify received worklist rows ``(row id, stored file, when it began)`` with
        the batch engine and record each row's verdict in the worklist (what the classify
        thread does with each group; callable directly, without the network)."""
        assert self.classifier is not None
        label = self.classifier.card.label
        waiting: dict[str, collections.deque[tuple[int, float]]] = {}
        for row_id, path, started in group:
            waiting.setdefault(str(path), collections.deque()).append((row_id, started))
        options = BatchOptions(
            record=False, skip_known=False, count_total=False, batch_size=self.batch_size
        )
        run = BatchRun([p for _, p, _ in group], self.classifier, options, cancel=self._stop)
        try:
            for row in run.rows():
                entries = waiting.get(str(row.path))
                if not entries:
                    continue
                row_id, started = entries.popleft()
                self._record(
                    row_id,
                    started,
                    label,
                    row.prediction,
                    row.probabilities,
                    row.error,
                    [w.line for w in row.warnings],  # the verdict's, population included
                    row.indeterminate,
                    row.finding,
                )
        except (BatchAborted, XRayDeskError, Exception) as exc:
            log.error("classifying received images failed: %s", exception_site(exc))
        for entries in waiting.values():
            for row_id, started in entries:
                self._record(row_id, started, label, None, None, "not classified")

    def _record(
        self,
        row_id: int,
        started: float,
        label: str,
        prediction: str | None,
        probabilities: dict[str, float] | None,
        error: str | None,
        warnings: list[str] | None = None,
        indeterminate: bool = False,
        finding: str | None = None,
    ) -> None:
        try:
            self.worklist.set_result(
                row_id,
                status=FAILED if error else CLASSIFIED,
                model=label,
                prediction=prediction,
                probabilities=probabilities,
                error=error,
                seconds=time.monotonic() - started,
                warnings=warnings,
                indeterminate=indeterminate,
                finding=finding,
            )
        except WorklistError as exc:
            log.error("%s", exc)
        now = time.monotonic()
        self.stats.rows += 1
        self.stats.last_row = now
        self._done_one()
        item = self.worklist.get(row_id)
        if item is not None:
            self._notify(item)
            if not error and self.send_to is not None:
                self._send_queue.put(row_id)

    # -- results back to the PACS (one thread) --------------------------------------------
    def _send_loop(self) -> None:
        from xraydesk.dicomnet.scu import send_results

        assert self.send_to is not None and self.classifier is not None
        while not self._stop.is_set():
            try:
                row_id = self._send_queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:  # one object that cannot be made or sent never stops the others
                item = self.worklist.get(row_id)
                if item is None or item.path is None:
                    continue
                note, warnings = send_results(
                    self.config,
                    self.send_to,
                    self.classifier,
                    item.path,
                    item.probabilities,
                    results_dir(),
                    item.indeterminate,
                )
            except Exception as exc:  # its text may quote a header value: type and place
                site = exception_site(exc)
                log.error("results of worklist #%s not made: %s", row_id, site)
                note, warnings = f"not sent to {self.send_to.name}: {site}", []
            try:
                self.worklist.set_results_sent(row_id, note, warnings)
            except Exception as exc:
                log.error("worklist #%s: results note not saved: %s", row_id, type(exc).__name__)


def whole_batches(group: list[Any], batch_size: int) -> tuple[list[Any], list[Any]]:
    """``group`` split into what to classify now (whole batches, or all of it when under
    one batch) and the rest, for the next group.

    Why: on torch (a GPU, or a model without an exported runtime) the batch engine pads a
    run's last batch to the full batch size once it has run a full one (one input shape
    per run), so a group of 40 at batch 32 cost the network 64 images (measured with
    bench_dicomnet before exported runtimes stopped padding). The rest waits only for the
    group before it, then goes with whatever arrived meanwhile, or alone, unpadded, in a
    group under one batch."""
    size = max(1, batch_size)
    cut = len(group) - len(group) % size
    if cut == 0 or cut == len(group):
        return group, []
    return group[:cut], group[cut:]


def results_dir() -> Path:
    """Where the node keeps the SR and Secondary Capture it made (0700)."""
    path = paths.data_dir() / RESULTS_DIR
    make_private_dirs(path)
    return path
