"""bench_dicomnet's 30-s silence: pynetdicom's own association thread took the answer to
a C-STORE now and then, and ``send_files`` waited the DIMSE time-out for it.

Caught in a benchmark run on a loaded machine (its sender's log: "Received unexpected
C-STORE service message" from the requestor thread at the moment the node had answered
file 189, then "DIMSE timeout reached" 30 s later). Here the same interleaving is made
certain with real pynetdicom over loopback, by holding threads up as a loaded machine
did: the reactor runs late after it is let go (so it passes its checkpoint although the
caller paused it again) and the caller is slow between sending and waiting."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import DigitalXRayImageStorageForPresentation

from tests.dicom_factory import make_dicom
from xraydesk.dicomnet import NodeConfig, make_node, scu, send_files
from xraydesk.dicomnet.answers import CallerAnswers

LATE_S = 0.05  # how late the reactor runs after it is let go
SLOW_S = 0.3  # how long the caller takes between sending a request and waiting


class _LateReactor(threading.Event):
    """The association's checkpoint, with its reactor thread held up as on a loaded
    machine. A reactor let go but paused again before it ran is held until an answer
    is in the DIMSE queue: the moment it took one in the benchmark."""

    def __init__(self, assoc: Any) -> None:
        super().__init__()
        self.assoc = assoc
        self.passed_while_paused = 0
        self.set()

    def wait(self, timeout: float | None = None) -> bool:
        woken = super().wait(timeout)
        if threading.current_thread() is not self.assoc:
            return woken
        time.sleep(LATE_S)
        if woken and not self.is_set():
            self.passed_while_paused += 1
            deadline = time.monotonic() + 1.0
            while self.assoc.dimse.msg_queue.empty() and time.monotonic() < deadline:
                time.sleep(0.001)
        return woken


def _loaded(assoc: Any, reactors: list[_LateReactor]) -> Any:
    reactor = _LateReactor(assoc)
    assoc._reactor_checkpoint = reactor
    reactors.append(reactor)
    send = assoc.dimse.send_msg

    def slow_send(primitive: Any, context_id: int) -> None:
        send(primitive, context_id)
        time.sleep(SLOW_S)

    assoc.dimse.send_msg = slow_send
    return assoc


def test_the_association_thread_never_takes_the_answer_to_a_c_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [
        make_dicom(tmp_path / f"f{i}.dcm", np.full((16, 16), i * 10, np.uint16)) for i in range(3)
    ]
    answered: list[str] = []

    def on_store(event: Any) -> int:
        answered.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    reactors: list[_LateReactor] = []
    associate = scu._associate
    monkeypatch.setattr(scu, "TIMEOUT_S", 3.0)  # a lost answer fails in 3 s, not 30
    monkeypatch.setattr(scu, "_associate", lambda *a: _loaded(associate(*a), reactors))
    scp = AE(ae_title="PEER")
    scp.add_supported_context(DigitalXRayImageStorageForPresentation)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        node = make_node("peer", "PEER", "127.0.0.1", server.server_address[1])
        outcome = send_files(NodeConfig(), node, files)
    finally:
        server.shutdown()
    assert reactors and reactors[0].passed_while_paused >= 1, "the race was not made"
    assert outcome.messages == []
    assert outcome.completed == 3 and outcome.failed == 0
    assert len(answered) == 3


def test_a_look_without_waiting_takes_requests_but_leaves_answers_and_the_end_mark() -> None:
    request, answer = C_STORE(), C_STORE()
    request.MessageID = 7
    answer.MessageIDBeingRespondedTo = 7
    answers = CallerAnswers()
    answers.put((1, request))
    assert answers.get(block=False) == (1, request)  # a request the peer sent: the reactor's
    answers.put((1, answer))
    with pytest.raises(queue.Empty):
        answers.get(block=False)
    assert answers.get(timeout=1) == (1, answer)  # the waiting caller's
    answers.put((None, None))  # the association ended
    with pytest.raises(queue.Empty):
        answers.get(block=False)
    assert answers.get(timeout=1) == (None, None)
