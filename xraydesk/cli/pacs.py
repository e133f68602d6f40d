"""``xraydesk pacs``: configure PACS nodes, echo, query, retrieve, send, see the worklist.

A thin front door over ``xraydesk.dicomnet`` (C-ECHO, C-FIND, C-MOVE, C-STORE). Every value
printed that came from a PACS or a received object goes through ``printable``: a Patient
ID holding terminal escapes must not drive the terminal or forge rows.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable

from xraydesk.cli.listen import add_node_options, config_from_args, tls_from_args
from xraydesk.errors import XRayDeskError
from xraydesk.path_args import path_arg
from xraydesk.printable import printable, table_line

EPILOG = """\
Nodes are kept in dicomnet.json in the XRayDesk data folder (XRAYDESK_DATA_DIR moves it).
`find` queries at study level (Study Root) and prints one line per study: Study Instance
UID, date, modalities, accession, patient ID, patient name (or JSON lines with --json).
`move` asks the PACS to send studies to this node's AE title: the PACS must know that
title with the address and port of a running `xraydesk listen`. Dates: YYYYMMDD or
YYYY-MM-DD. Control characters in printed values are shown escaped (\\x1b, \\n).
Exit status: 0 done, 1 the PACS could not be reached, refused or failed, 2 usage or
configuration error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pacs",
        help="PACS nodes: echo, query, retrieve, send results, worklist",
        description="Talk to a configured PACS over DICOM.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("nodes", help="list the configured nodes")
    p.set_defaults(run=_nodes)
    p = actions.add_parser("add", help="add or replace a node")
    p.add_argument("name")
    p.add_argument("node_ae", metavar="AE_TITLE")
    p.add_argument("node_host", metavar="HOST")
    p.add_argument("node_port", metavar="PORT", type=int)
    p.add_argument("--tls", action="store_true", help="associate with TLS")
    p.set_defaults(run=_add)
    p = actions.add_parser("remove", help="remove a node")
    p.add_argument("name")
    p.set_defaults(run=_remove)

    p = actions.add_parser("echo", help="C-ECHO a node")
    p.add_argument("name")
    p.set_defaults(run=_echo)
    p = actions.add_parser("find", help="C-FIND studies")
    p.add_argument("name")
    p.add_argument("--patient-id", default="")
    p.add_argument("--accession", default="")
    p.add_argument("--from", dest="date_from", default="", metavar="YYYYMMDD", type=_date)
    p.add_argument("--to", dest="date_to", default="", metavar="YYYYMMDD", type=_date)
    p.add_argument(
        "--modality", action="append", default=[], help="repeatable (default: CR and DX)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=_find)
    p = actions.add_parser("move", help="C-MOVE studies to this node (or --to-ae)")
    p.add_argument("name")
    p.add_argument("study_uids", nargs="+", metavar="STUDY_UID")
    p.add_argument("--to-ae", metavar="TITLE", help="destination AE title")
    p.set_defaults(run=_move)
    p = actions.add_parser("send", help="C-STORE DICOM files (e.g. from --dicom-out)")
    p.add_argument("name")
    p.add_argument("files", nargs="+", type=path_arg)
    p.set_defaults(run=_send)
    p = actions.add_parser("worklist", help="the images received, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_worklist)
    for action in actions.choices.values():
        add_node_options(action)
        action.set_defaults(run=_network_failure_exits_1(action.get_default("run")))


def _date(text: str) -> str:
    """A query date as DICOM writes it (YYYYMMDD); argparse turns the error into exit 2."""
    from xraydesk.dicomnet.scu import check_query_date

    try:
        return check_query_date(text)
    except XRayDeskError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _network_failure_exits_1(run: Callable[[argparse.Namespace], int]):
    """A PACS that cannot be reached, refuses or fails exits 1, as documented; the
    configuration errors stay 2 (the front door's usage status)."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        from xraydesk.dicomnet.scu import DicomNetError

        try:
            return run(args)
        except DicomNetError as exc:
            print(f"xraydesk: {printable(str(exc))}", file=sys.stderr)
            return 1

    return wrapped


def _nodes(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    print(f"this node: {config.ae_title} on {config.host}:{config.port}")
    for node in config.nodes.values():
        print(printable(node.describe()))
    return 0


def _add(args: argparse.Namespace) -> int:
    """Save a node; TLS files given with it are saved as this node's own (``dicomnet.json``
    keeps one set, for every TLS association both ways: ``dicomnet.tls``), checked
    first, and so is ``--ae-title`` (the title this node calls it with). Both were
    dropped without a word, so the first TLS echo failed, or the PACS refused a title it
    was never told."""
    import dataclasses

    from xraydesk.dicomnet.config import ConfigError, check_ae_title, load_config, make_node
    from xraydesk.dicomnet.tls import client_context

    config = load_config()
    if args.ae_title:
        config = dataclasses.replace(config, ae_title=check_ae_title(args.ae_title))
    node = make_node(args.name, args.node_ae, args.node_host, args.node_port, args.tls)
    tls = tls_from_args(args, config.tls)
    given = tls is not config.tls
    if given:
        if not node.tls:
            raise ConfigError(
                f"--tls-cert/--tls-key/--tls-ca: {node.name} is added without --tls, so "
                "no TLS file would be used with it; add --tls, or leave them out"
            )
        client_context(tls)  # each file named with its cause, before anything is saved
        config = dataclasses.replace(config, tls=tls)
    path = config.with_node(node).save()
    print(printable(f"saved {node.describe()} in {path}"))
    if args.ae_title:
        print(printable(f"this node's AE title (for every association): {config.ae_title}"))
    if given and tls is not None:
        files = f"certificate {tls.cert}, key {tls.key}, CA {tls.ca}"
        print(printable(f"TLS files of this node (for every TLS association): {files}"))
    return 0


def _remove(args: argparse.Namespace) -> int:
    import dataclasses

    from xraydesk.dicomnet.config import load_config

    config = load_config()
    config.node(args.name)
    nodes = {k: v for k, v in config.nodes.items() if k != args.name}
    auto = None if config.auto_send == args.name else config.auto_send
    dataclasses.replace(config, nodes=nodes, auto_send=auto).save()
    print(f"removed {args.name}")
    return 0


def _echo(args: argparse.Namespace) -> int:
    from xraydesk.dicomnet.scu import echo

    config = config_from_args(args)
    node = config.node(args.name)
    seconds = echo(config, node)
    print(f"{node.describe()} answered C-ECHO in {seconds * 1000:.0f} ms")
    return 0


def _find(args: argparse.Namespace) -> int:
    from xraydesk.dicomnet.scu import CHEST_MODALITIES, StudyQuery, find_studies

    config = config_from_args(args)
    query = StudyQuery(
        patient_id=args.patient_id,
        accession=args.accession,
        date_from=args.date_from,
        date_to=args.date_to,
        modalities=tuple(m.upper() for m in args.modality) or CHEST_MODALITIES,
    )
    for match in find_studies(config, config.node(args.name), query):
        if args.json:
            print(json.dumps(match.__dict__))
        else:
            print(
                table_line(
                    [
                        match.study_uid,
                        match.study_date,
                        match.modalities,
                        match.accession,
                        match.patient_id,
                        match.patient_name,
                    ]
                )
            )
    return 0


def _move(args: argparse.Namespace) -> int:
    from xraydesk.dicomnet.scu import move_studies

    config = config_from_args(args)
    outcome = move_studies(config, config.node(args.name), args.study_uids, args.to_ae)
    print(f"{outcome.completed} images sent, {outcome.failed} failed, {outcome.warnings} warnings")
    for message in outcome.messages:
        print(f"xraydesk: {printable(message)}", file=sys.stderr)
    return 0 if outcome.ok else 1


def _send(args: argparse.Namespace) -> int:
    from xraydesk.dicomnet.scu import send_files

    config = config_from_args(args)  # send_files checks each file before reading any
    outcome = send_files(config, config.node(args.name), args.files)
    print(f"{outcome.completed} sent, {outcome.failed} refused")
    for message in outcome.messages:
        print(f"xraydesk: {printable(message)}", file=sys.stderr)
    return 0 if outcome.ok else 1


def _worklist(args: argparse.Namespace) -> int:
    from xraydesk.batch.rows import indeterminate_words
    from xraydesk.dicomnet.worklist import Worklist

    with Worklist() as worklist:
        for item in worklist.items(limit=args.limit):
            if args.json:
                data = {k: v for k, v in item.__dict__.items()}
                data["path"] = str(item.path) if item.path else None
                print(json.dumps(data))
            else:
                words = indeterminate_words(item.finding).upper()
                withheld = words if item.indeterminate else ""
                result = item.prediction or item.error or withheld
                cells = [f"#{item.id}", item.received_at, item.status, item.modality]
                print(table_line([*cells, item.patient_id, result]))
    return 0
