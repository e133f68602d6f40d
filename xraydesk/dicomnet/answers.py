"""Keeps the answers to this node's own requests for the call that waits for them.

Why: in an association this node requests, pynetdicom runs a reactor thread beside the
caller. Each ``send_c_*`` pauses it (``_reactor_checkpoint.clear()``, then waits for
``_is_paused``) before sending, and lets it go when the answer came. The pause is racy:
a reactor that was let go after the previous answer but had not run yet still reads as
paused, passes its checkpoint anyway and takes one look at the DIMSE message queue. On a
loaded machine (bench_dicomnet: 2 cores, a background training, the node classifying)
that look came after the peer's C-STORE-RSP had arrived: the reactor took the answer,
logged "Received unexpected C-STORE service message" at a level nobody sees and dropped
it, and the caller waited the whole DIMSE time-out (30 s) for an answer the peer had
sent; the peer, idle, timed out too. Here the reactor, which only looks without waiting,
may still take a request the peer sends (what it is for), never an answer nor the
"association ended" mark: those are the caller's, who waits for them.
"""

from __future__ import annotations

import queue
from typing import Any

_Item = tuple[Any, Any]  # (presentation context ID, DIMSE primitive), or (None, None)


def _for_caller(item: _Item) -> bool:
    """An answer to a request (it names the message it answers) or the end mark."""
    message = item[1]
    return message is None or getattr(message, "MessageIDBeingRespondedTo", None) is not None


class CallerAnswers(queue.Queue[_Item]):
    """A DIMSE message queue whose answers only a waiting ``get`` takes."""

    def get(self, block: bool = True, timeout: float | None = None) -> _Item:
        if block:
            return super().get(block, timeout)
        with self.not_empty:
            if not self._qsize() or _for_caller(self.queue[0]):
                raise queue.Empty
            item = self._get()
            self.not_full.notify()
            return item


def keep_answers_for_caller(assoc: Any) -> None:
    """Give an established requested association a ``CallerAnswers`` queue (before any
    request is sent; whatever the old one holds moves over)."""
    dimse = assoc.dimse
    old, new = dimse.msg_queue, CallerAnswers()
    dimse.msg_queue = new
    while True:
        try:
            new.put(old.get_nowait())
        except queue.Empty:
            break
