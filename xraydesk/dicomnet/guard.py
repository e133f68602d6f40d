"""Keeps one caller from locking out the node or exhausting its memory.

Why each rule (``NodeConfig`` holds the numbers):

- pynetdicom counts every open TCP connection as an association, and waited 60 s for a
  silent one to send its A-ASSOCIATE-RQ: 16 idle connections locked every PACS out for
  a minute, while the log blamed the caller's AE title. Here a connection must ask for
  its association within ``idle_timeout_s``, an association that goes silent is aborted
  after the same time, and ``max_associations`` counts negotiated associations only
  (checked when the request arrives); bare connections have their own, larger cap, so
  threads stay bounded.
- TLS handshakes run in the connection's own thread with that timeout; in pynetdicom's
  accept loop one silent client stopped the node from accepting anyone.
- A refusal is logged with its real reason, once per reason a minute; the repeats are
  counted into the next line.
- A data set is counted as its fragments arrive. Past ``max_object_mb`` the rest is
  dropped, not buffered, and the C-STORE is answered 0xA700 (out of resources), nothing
  written; a PDU longer than the node's maximum PDU ends the connection before it is read.
"""

from __future__ import annotations

import collections
import io
import logging
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer

from xraydesk.dicomnet.config import NodeConfig
from xraydesk.printable import printable

log = logging.getLogger(__name__)

CONNECTIONS_PER_ASSOCIATION = 4  # bare connections allowed per association slot
REPORT_EVERY_S = 60.0
_P_DATA_TF = 0x04
_REJECT_REASONS = {
    (0x01, 0x03): "its calling AE title is not allowed",
    (0x01, 0x07): "it called another AE title than this node's",
    (0x01, 0x02): "its application context is not DICOM",
    (0x02, 0x02): "its protocol version is not supported",
    (0x03, 0x01): "the node is congested",
    (0x03, 0x02): "too many connections are open",
}


class RefusalLog:
    """One warning per reason per ``every`` seconds; repeats are counted, not printed."""

    def __init__(self, every: float = REPORT_EVERY_S) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._skipped: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def refused(self, what: str, reason: str) -> None:
        """``what`` says who was refused (address, AE title), ``reason`` why."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self.every:
                self._skipped[reason] += 1
                return
            self._last[reason] = now
            more = self._skipped.pop(reason, 0)
        also = f" ({more} more refused for this reason since the last report)" if more else ""
        log.warning("refused %s: %s%s", what, reason, also)


class _Dropped(io.BytesIO):
    """Where the fragments of an over-size data set go: counted, never kept."""

    def write(self, data: Any) -> int:
        return len(data)


@dataclass
class _Connection:
    address: str
    received: int = 0  # data-set bytes of the message in progress
    oversize: bool = False
    requested: bool = False  # sent its A-ASSOCIATE-RQ and was given a slot


class AssociationGuard:
    """The limits of one node: configure its AE, bind its handlers, use its server class."""

    def __init__(
        self, config: NodeConfig, max_pdu: int, on_refused: Callable[[], None] | None = None
    ) -> None:
        self.idle_timeout = float(config.idle_timeout_s)
        self.max_associations = int(config.max_associations)
        self.max_connections = CONNECTIONS_PER_ASSOCIATION * self.max_associations
        self.max_object = int(config.max_object_bytes)
        self.max_object_mb = config.max_object_mb
        self.max_pdu = int(max_pdu)
        self.refusals = RefusalLog()
        self._on_refused = on_refused
        self._host_allowed = config.host_allowed
        self._lock = threading.Lock()
        self._connections: dict[int, _Connection] = {}
        self._ae: AE | None = None

    def configure(self, ae: AE) -> None:
        self._ae = ae
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.idle_timeout
        ae.maximum_pdu_size = self.max_pdu
        # pynetdicom's own check counts bare connections too: only a backstop here
        ae.maximum_associations = self.max_connections + 1

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        return [
            (evt.EVT_CONN_OPEN, self._on_open),
            (evt.EVT_CONN_CLOSE, self._on_close),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_DATA_RECV, self._on_data),
        ]

    def server_class(self) -> type[ThreadedAssociationServer]:
        return type("GuardedNodeServer", (GuardedServer,), {"guard": self})

    # -- the C-STORE handler asks ----------------------------------------------------------
    def oversize(self, assoc: Any) -> bool:
        """Whether the data set of the C-STORE being handled went past the limit."""
        conn = self._connections.get(id(assoc))
        return conn is not None and conn.oversize

    def refuse_oversize(self, calling: str) -> None:
        self._refused(
            f"a C-STORE from {printable(calling)}",
            f"the object is larger than {self.max_object_mb:g} MB (max_object_mb)",
        )

    # -- connections ------------------------------------------------------------------------
    def admit(self, address: str, open_connections: int) -> bool:
        """Called before a connection gets a thread: the allow-list and the connection cap."""
        if not self._host_allowed(address):
            self._refused(f"a connection from {address}", "address not allowed")
            return False
        if open_connections >= self.max_connections:
            self._refused(
                f"a connection from {address}",
                f"{open_connections} connections are open already (the node accepts "
                f"{self.max_connections}; silent ones close after {self.idle_timeout:g} s)",
            )
            return False
        return True

    def _refused(self, what: str, reason: str) -> None:
        if self._on_refused is not None:
            self._on_refused()
        self.refusals.refused(what, reason)

    def _live(self) -> list[Any]:
        """The node's association threads still running (pynetdicom's own list)."""
        return [a for a in self._ae.active_associations if a.is_acceptor] if self._ae else []

    def _on_open(self, event: Any) -> None:
        address = str(event.address[0]) if isinstance(event.address, tuple) else "?"
        with self._lock:
            # counted from the live threads, so a close event that never came leaks nothing
            live = {id(a) for a in self._live()} | {id(event.assoc)}
            self._connections = {k: c for k, c in self._connections.items() if k in live}
            self._connections[id(event.assoc)] = _Connection(address)
        sock = event.assoc.dul.socket
        if sock is not None and self.max_pdu:
            sock.recv = _bounded_recv(sock, self.max_pdu + 1024, self, address)

    def _on_close(self, event: Any) -> None:
        with self._lock:
            self._connections.pop(id(event.assoc), None)

    def _on_requested(self, event: Any) -> None:
        """A-ASSOCIATE-RQ received: take a slot, or refuse with "local limit exceeded"."""
        with self._lock:
            others = [a for a in self._live() if a is not event.assoc]
            busy = 0
            for assoc in others:
                conn = self._connections.get(id(assoc))
                busy += bool(assoc.is_established or (conn is not None and conn.requested))
            full = busy >= self.max_associations
            conn = self._connections.get(id(event.assoc))
            if conn is not None and not full:
                conn.requested = True
        if full:
            event.assoc.acse.send_reject(0x02, 0x03, 0x02)
            event.assoc.kill()  # as pynetdicom does: the DUL sends the rejection first
            self._refused(
                f"an association from {self._who(event.assoc)}",
                f"{self.max_associations} associations are open already (max_associations)",
            )

    def _on_rejected(self, event: Any) -> None:
        """pynetdicom refused the association: say why, from the rejection it sent."""
        primitive = event.assoc.acceptor.primitive
        key = (getattr(primitive, "result_source", None), getattr(primitive, "diagnostic", None))
        reason = _REJECT_REASONS.get(key, f"rejected (source {key[0]}, reason {key[1]})")
        self._refused(f"an association from {self._who(event.assoc)}", reason)

    @staticmethod
    def _who(assoc: Any) -> str:
        requestor = assoc.requestor
        title = printable(str(requestor.ae_title or "").strip())
        return f"{requestor.address} as {title!r}" if title else str(requestor.address)

    # -- data sets (the connection's DUL thread, before the PDU is decoded) ----------------
    def _on_data(self, event: Any) -> None:
        data: bytes = event.data
        if not data or data[0] != _P_DATA_TF:
            return
        conn = self._connections.get(id(event.assoc))
        if conn is None:
            return
        offset, end = 6, len(data)
        while offset + 6 <= end:  # PDV items: length (4), context ID (1), control (1), data
            (length,) = struct.unpack_from(">L", data, offset)
            if data[offset + 5] & 0x01:  # a command fragment: a new message begins
                conn.received, conn.oversize = 0, False
            else:
                conn.received += max(length - 2, 0)
            offset += 4 + length
        if conn.received > self.max_object:
            conn.oversize = True
            message = event.assoc.dimse.message
            if message is not None and not isinstance(message.data_set, _Dropped):
                message.data_set = _Dropped()  # what came so far is freed with it


def _bounded_recv(sock: Any, limit: int, guard: AssociationGuard, address: str) -> Any:
    """The socket's ``recv`` that will not read a PDU longer than ``limit`` into memory."""
    original = sock.recv

    def recv(nr_bytes: int) -> bytearray:
        if nr_bytes <= limit:
            return original(nr_bytes)
        guard._refused(
            f"a PDU from {address}",
            f"it is longer than the node's maximum PDU ({nr_bytes} > {limit} bytes)",
        )
        sock.close()
        return bytearray()

    return recv


class GuardedServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with the guard's admission and TLS off the accept loop."""

    guard: AssociationGuard

    def verify_request(self, request: Any, client_address: Any) -> bool:
        host = client_address[0] if isinstance(client_address, tuple) else str(client_address)
        return self.guard.admit(host, len(self.ae.active_associations))

    def get_request(self) -> Any:
        assert self.socket is not None
        client, address = self.socket.accept()
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self.guard.idle_timeout)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ValueError):
                host = client_address[0] if isinstance(client_address, tuple) else "?"
                self.guard._refused(
                    f"a connection from {host}", "the TLS handshake failed or timed out"
                )
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)
