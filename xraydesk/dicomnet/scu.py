"""This node as a caller: C-ECHO, C-FIND, C-MOVE and C-STORE to a configured PACS.

Queries are Study Root at STUDY level (every PACS supports it): by patient ID, accession
number, study date range and modality (CR and DX by default: chest radiographs).
Retrieval is C-MOVE to this node's own AE title, so the PACS must know the node (its AE
title, address and port); the images then arrive through the running Storage SCP and are
classified like any other. Errors name the node and the DICOM status, never a patient.
"""

from __future__ import annotations

import datetime
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from xraydesk.dicomnet.answers import keep_answers_for_caller
from xraydesk.dicomnet.config import NodeConfig, RemoteNode
from xraydesk.dicomnet.received import UnreadableObject, quiet_pynetdicom, raw_text
from xraydesk.dicomnet.tls import client_context
from xraydesk.errors import XRayDeskError
from xraydesk.imaging.limits import check_file

log = logging.getLogger(__name__)
quiet_pynetdicom()

TIMEOUT_S = 30.0
CHEST_MODALITIES = ("CR", "DX")


class DicomNetError(XRayDeskError):
    """A DICOM association or operation with a remote node failed."""


class QueryError(XRayDeskError):
    """A query the user wrote cannot be sent as it is (a bad date)."""


@dataclass(frozen=True)
class StudyQuery:
    patient_id: str = ""
    accession: str = ""
    date_from: str = ""  # YYYYMMDD, empty: open
    date_to: str = ""
    modalities: tuple[str, ...] = CHEST_MODALITIES

    def identifier(self) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.PatientID = self.patient_id
        ds.AccessionNumber = self.accession
        ds.StudyDate = _date_range(self.date_from, self.date_to)
        ds.ModalitiesInStudy = "\\".join(self.modalities)
        for keyword in (
            "PatientName",
            "PatientBirthDate",
            "StudyInstanceUID",
            "StudyTime",
            "StudyDescription",
            "NumberOfStudyRelatedInstances",
        ):
            setattr(ds, keyword, "")
        return ds


@dataclass(frozen=True)
class StudyMatch:
    """One study the PACS found. Patient fields are identifying: show, never log."""

    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession: str = ""
    description: str = ""
    modalities: str = ""
    instances: int | None = None

    def __repr__(self) -> str:
        return f"StudyMatch(date={self.study_date!r}, modalities={self.modalities!r})"


@dataclass
class TransferOutcome:
    completed: int = 0
    failed: int = 0
    warnings: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.messages


def check_query_date(text: str) -> str:
    """``text`` (YYYYMMDD or YYYY-MM-DD, empty for an open end) as YYYYMMDD, or
    DicomNetError: a malformed date would be sent as a range the PACS reads its own way."""
    text = text.strip()
    if not text:
        return ""
    match = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    try:
        if match is None:
            raise ValueError
        datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        raise QueryError(f"{text!a} is not a date (YYYYMMDD or YYYY-MM-DD)") from None
    return "".join(match.groups())


def _date_range(start: str, end: str) -> str:
    start, end = check_query_date(start), check_query_date(end)
    if start and end:
        return f"{start}-{end}"
    if start:
        return f"{start}-"
    if end:
        return f"-{end}"
    return ""


def _ae(config: NodeConfig) -> AE:
    ae = AE(ae_title=config.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    ae.connection_timeout = 10.0
    ae.maximum_pdu_size = 0  # no limit: the peer's own limit applies
    return ae


def _associate(config: NodeConfig, node: RemoteNode, ae: AE) -> Association:
    kwargs: dict[str, Any] = {"ae_title": node.ae_title}
    if node.tls:
        kwargs["tls_args"] = (client_context(config.tls), node.host)
    assoc = ae.associate(node.host, node.port, **kwargs)
    if not assoc.is_established:
        why = (
            "rejected the association"
            if assoc.is_rejected
            else "could not be reached or aborted the association"
        )
        raise DicomNetError(
            f"{node.describe()} {why} (this node calls as {config.ae_title}; "
            "check the PACS knows this AE title and address)"
        )
    keep_answers_for_caller(assoc)  # pynetdicom's own thread took one now and then
    return assoc


def echo(config: NodeConfig, node: RemoteNode) -> float:
    """C-ECHO; returns the round trip in seconds."""
    ae = _ae(config)
    ae.add_requested_context(Verification)
    start = time.perf_counter()
    assoc = _associate(config, node, ae)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status or status.Status != 0x0000:
        raise DicomNetError(f"{node.describe()} did not answer the C-ECHO")
    return time.perf_counter() - start


def find_studies(config: NodeConfig, node: RemoteNode, query: StudyQuery) -> list[StudyMatch]:
    ae = _ae(config)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(config, node, ae)
    matches: list[StudyMatch] = []
    try:
        model = StudyRootQueryRetrieveInformationModelFind
        for status, identifier in assoc.send_c_find(query.identifier(), model):
            if not status:
                raise DicomNetError(f"{node.describe()} stopped answering the C-FIND")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01) and identifier is not None:
                matches.append(_match(identifier))
            elif code != 0x0000:
                raise DicomNetError(f"{node.describe()}: C-FIND failed (status 0x{code:04X})")
    finally:
        assoc.release()
    return matches


def _match(ds: Dataset) -> StudyMatch:
    count = ds.get("NumberOfStudyRelatedInstances")
    modalities = ds.get("ModalitiesInStudy", "")
    if not isinstance(modalities, str):
        modalities = "\\".join(str(m) for m in modalities)
    return StudyMatch(
        study_uid=_answer(ds, "StudyInstanceUID"),
        patient_id=_answer(ds, "PatientID"),
        patient_name=_answer(ds, "PatientName"),
        study_date=_answer(ds, "StudyDate"),
        accession=_answer(ds, "AccessionNumber"),
        description=_answer(ds, "StudyDescription"),
        modalities=modalities,
        instances=int(count) if count not in (None, "") else None,
    )


def _answer(ds: Dataset, keyword: str) -> str:
    """A text field of a C-FIND answer, read raw: pydicom's check of an odd value would
    log the value (a patient ID) itself."""
    try:
        return raw_text(ds, keyword) or ""
    except UnreadableObject:
        return ""


def move_studies(
    config: NodeConfig,
    node: RemoteNode,
    study_uids: Sequence[str],
    destination: str | None = None,
    on_progress: Callable[[TransferOutcome], None] | None = None,
) -> TransferOutcome:
    """C-MOVE each study to ``destination`` (default: this node's AE title)."""
    ae = _ae(config)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    outcome = TransferOutcome()
    assoc = _associate(config, node, ae)
    try:
        for uid in study_uids:
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.StudyInstanceUID = uid
            last: Dataset | None = None
            for status, _identifier in assoc.send_c_move(
                ds, destination or config.ae_title, StudyRootQueryRetrieveInformationModelMove
            ):
                if not status:
                    raise DicomNetError(f"{node.describe()} stopped answering the C-MOVE")
                last = status
                if int(status.Status) in (0xFF00,) and on_progress is not None:
                    on_progress(_counts(status, outcome, final=False))
            if last is None:
                outcome.messages.append("no answer to a C-MOVE")
                continue
            code = int(last.Status)
            done = _counts(last, TransferOutcome(), final=True)
            outcome.completed += done.completed
            outcome.failed += done.failed
            outcome.warnings += done.warnings
            if code == 0xA801:
                outcome.messages.append(
                    f"{node.describe()} does not know the move destination "
                    f"{destination or config.ae_title} (add it to the PACS's modalities)"
                )
            elif code not in (0x0000, 0xB000):
                outcome.messages.append(f"C-MOVE ended with status 0x{code:04X}")
    finally:
        assoc.release()
    return outcome


def _counts(status: Dataset, outcome: TransferOutcome, final: bool) -> TransferOutcome:
    current = TransferOutcome(
        completed=int(status.get("NumberOfCompletedSuboperations", 0) or 0),
        failed=int(status.get("NumberOfFailedSuboperations", 0) or 0),
        warnings=int(status.get("NumberOfWarningSuboperations", 0) or 0),
    )
    if not final:
        current.completed += outcome.completed
    return current


def send_files(config: NodeConfig, node: RemoteNode, files: Iterable[Path]) -> TransferOutcome:
    """C-STORE files (sent as they are stored: their own SOP class and transfer syntax).
    Each is checked on ``stat`` before it is read (``limits.check_file``: the
    ``ImageLoadError`` names it and the cause): a named pipe blocked the reader for good,
    whichever front door (the GUI, ``pacs send``) gave it."""
    files = list(files)
    for path in files:  # all of them before any is read
        check_file(path)
    contexts: dict[str, set[str]] = {}
    for path in files:
        try:
            ds = dcmread(path, stop_before_pixels=True, force=True)
            contexts.setdefault(str(ds.SOPClassUID), set()).add(str(ds.file_meta.TransferSyntaxUID))
        except (OSError, InvalidDicomError, AttributeError) as exc:
            raise DicomNetError(f"{path}: not a DICOM file that can be sent ({exc})") from exc
    pairs = [(sop, syntax) for sop, syntaxes in contexts.items() for syntax in sorted(syntaxes)]
    if len(pairs) > 128:
        raise DicomNetError("too many different kinds of object for one association")
    ae = _ae(config)
    for sop_class, syntax in pairs:  # one context each: the peer accepts one syntax per context
        ae.add_requested_context(sop_class, [syntax])
    outcome = TransferOutcome()
    assoc = _associate(config, node, ae)
    try:
        for index, path in enumerate(files):
            try:
                status = assoc.send_c_store(path) if assoc.is_established else None
            except ValueError:  # the peer refused this object's class or transfer syntax
                outcome.failed += 1
                outcome.messages.append(f"{path.name}: the peer does not accept this kind")
                continue
            except RuntimeError:  # the association ended between the check and the send
                status = None
            if not status:  # no answer: aborted by the peer or the network, or a time-out
                _association_lost(outcome, node, index, len(files))
                if assoc.is_established:  # a peer that does not answer would not release
                    assoc.abort()
                break
            code = int(status.Status)
            if code == 0x0000:
                outcome.completed += 1
            elif code in (0xB000, 0xB007, 0xB006):
                outcome.completed += 1
                outcome.warnings += 1
            else:
                outcome.failed += 1
                outcome.messages.append(f"{path.name}: C-STORE refused (0x{code:04X})")
    finally:
        if assoc.is_established:
            assoc.release()
    return outcome


def _association_lost(outcome: TransferOutcome, node: RemoteNode, sent: int, total: int) -> None:
    """A C-STORE without an answer: the association was aborted (pynetdicom then raised
    a RuntimeError, a traceback at the user, on the next C-STORE) or the peer did not
    answer in time, after which each further file waited the whole DIMSE time-out (30 s)
    for nothing. The file and the rest are failures, said in one line, and the
    association is given up."""
    outcome.failed += total - sent
    outcome.messages.append(
        f"{node.describe()} stopped answering after {sent} of {total} files (the association "
        f"was aborted by the peer or the network, or timed out); {total - sent} not sent"
    )


def send_results(
    config: NodeConfig,
    node: RemoteNode,
    classifier: Any,
    source: Path,
    probabilities: dict[str, float] | None,
    out_dir: Path,
    indeterminate: bool | None = None,
) -> tuple[str, list[str]]:
    """Make the SR and heat-map Secondary Capture of ``source``, keep them in ``out_dir``
    and C-STORE them to ``node``. Returns a note for the worklist and the warnings put
    in the SR; a failure is the note, never an exception (the node goes on).
    ``indeterminate``: the verdict's flag recorded with the result (None: checked here)."""
    from xraydesk.dicomnet.result_objects import make_results

    try:
        objects = make_results(source, classifier, probabilities, indeterminate=indeterminate)
        files = objects.write(out_dir)
        outcome = send_files(config, node, files)
    except XRayDeskError as exc:
        log.warning("results not sent to %s: %s", node.name, type(exc).__name__)
        return f"not sent to {node.name}: {exc}", []
    if not outcome.ok:
        return f"not sent to {node.name}: {'; '.join(outcome.messages)}", objects.warnings
    return f"SR and heat map sent to {node.name}", objects.warnings
