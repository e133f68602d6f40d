"""``xraydesk listen``: run the DICOM node (Storage SCP) that classifies what it receives.

A thin front door over ``xraydesk.dicomnet.StorageNode``; options override
``dicomnet.json`` in the data folder for this run only.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from typing import TYPE_CHECKING

from xraydesk.dicomnet.config import (
    NodeConfig,
    TlsFiles,
    check_ae_title,
    check_host,
    config_path,
    load_config,
)
from xraydesk.path_args import path_text

if TYPE_CHECKING:
    from xraydesk.dicomnet.worklist import WorkItem

EPILOG = """\
Every chest radiograph received (CR/DX/DR, body part CHEST or unset) is stored under the
data folder (dicom/<Study UID>/<Series UID>/<SOP Instance UID>.dcm, readable only by
you), classified, and added to the worklist in results.sqlite (`xraydesk pacs worklist`,
or the app's PACS panel). Other objects are acknowledged and listed as skipped.

Only associations from an allowed calling AE title (--allow-ae, allowed_ae_titles or a
configured node's title in dicomnet.json) AND an allowed address (--allow-host, an IP
or a network such as 10.1.0.0/16; loopback when none is given) are accepted.
--send-results NAME sends an SR and a heat-map Secondary Capture of every classified
image to the configured node NAME. Output: one line per image, without patient data.
--metrics-port N serves the per-day counts of the results database (images, classes,
indeterminate, warning codes, confidence, latency; no patient data) for Prometheus at
http://127.0.0.1:N/metrics; --metrics-host ADDR listens elsewhere (your choice to expose).
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "listen",
        help="run a DICOM node that classifies the images a PACS sends",
        description="Receive images by DICOM C-STORE, classify them, list them in the worklist.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_node_options(parser)
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 11112; 0 picks a free one)")
    parser.add_argument(
        "--allow-ae", action="append", default=[], metavar="TITLE", help="allowed calling AE"
    )
    parser.add_argument(
        "--allow-host", action="append", default=[], metavar="ADDR", help="allowed address/net"
    )
    parser.add_argument("--send-results", metavar="NODE", help="send SR + heat map to this node")
    parser.add_argument(
        "--model", type=path_text, metavar="NAME|PATH", help="model (default: the default model)"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve per-day counts in the Prometheus text format on this port (/metrics)",
    )
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="address for --metrics-port (127.0.0.1)"
    )
    parser.set_defaults(run=run)


def add_node_options(parser: argparse.ArgumentParser) -> None:
    """Options every DICOM command shares: who this node is and its TLS files."""
    parser.add_argument("--ae-title", metavar="TITLE", help="this node's AE title")
    parser.add_argument(
        "--tls-cert", type=path_text, metavar="PEM", help="certificate for TLS associations"
    )
    parser.add_argument("--tls-key", type=path_text, metavar="PEM", help="its private key")
    parser.add_argument(
        "--tls-ca", type=path_text, metavar="PEM", help="CA that signs the peers' certificates"
    )


def config_from_args(args: argparse.Namespace) -> NodeConfig:
    """``dicomnet.json`` with this command's options applied on top."""
    config = load_config()
    changes: dict[str, object] = {}
    if args.ae_title:
        changes["ae_title"] = check_ae_title(args.ae_title)
    if getattr(args, "host", None):
        changes["host"] = args.host
    if getattr(args, "port", None) is not None:
        changes["port"] = args.port
    if getattr(args, "allow_ae", None):
        titles = [check_ae_title(t) for t in args.allow_ae]
        changes["allowed_ae_titles"] = (*config.allowed_ae_titles, *titles)
    if getattr(args, "allow_host", None):
        hosts = [check_host(h) for h in args.allow_host]
        changes["allowed_hosts"] = (*config.allowed_hosts, *hosts)
    if getattr(args, "send_results", None):
        config.node(args.send_results)  # fails early with the known names
        changes["auto_send"] = args.send_results
    changes["tls"] = tls_from_args(args, config.tls)
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def tls_from_args(args: argparse.Namespace, saved: TlsFiles | None) -> TlsFiles | None:
    """The TLS files of ``dicomnet.json`` (``saved``) with those given as options in
    their place; ``saved`` itself when none is given."""
    if not (args.tls_cert or args.tls_key or args.tls_ca):
        return saved
    base = saved or TlsFiles()
    return TlsFiles(
        cert=_path(args.tls_cert) or base.cert,
        key=_path(args.tls_key) or base.key,
        ca=_path(args.tls_ca) or base.ca,
    )


def _path(value: str | None):
    from pathlib import Path

    return Path(value).expanduser().absolute() if value else None


def run(args: argparse.Namespace) -> int:
    from xraydesk.classifier import Classifier
    from xraydesk.dicomnet.node import StorageNode
    from xraydesk.dicomnet.worklist import WorkStatus
    from xraydesk.model.library import resolve_model
    from xraydesk.printable import printable

    config = config_from_args(args)
    if config.tls is not None:  # a missing TLS file named now, not after the model loads
        from xraydesk.dicomnet.tls import server_context

        server_context(config.tls)
    card = resolve_model(args.model)
    classifier = Classifier.load(card, device=args.device)

    def show(item: WorkItem) -> None:
        if item.status != WorkStatus.RECEIVED:
            print(printable(item_line(item, card.display_names)), flush=True)

    node = StorageNode(config, classifier, on_item=show)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    port = node.start()
    metrics = None
    if args.metrics_port is not None:
        from xraydesk.monitor.prometheus import serve_metrics

        try:
            metrics = serve_metrics(node.worklist.path, args.metrics_port, args.metrics_host)
        except BaseException:
            node.stop()
            raise
        print(f"xraydesk: metrics on {metrics.url}", file=sys.stderr, flush=True)
    allowed = ", ".join(config.accepted_ae_titles)
    print(
        f"xraydesk: listening on {config.host}:{port} as {config.ae_title}"
        f"{' (TLS)' if config.tls else ''}, model {card.label} on {classifier.device.label}; "
        f"calling AE titles allowed: {allowed}; config {config_path()}",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if metrics is not None:
            metrics.stop()
        node.stop()
    print(f"xraydesk: node stopped ({node.stats.rows} images classified)", file=sys.stderr)
    return 0


def item_line(item: WorkItem, names: dict[str, str]) -> str:
    """The node's line for a classified (or failed) worklist item: the class and its
    probability, INDETERMINATE with the warnings that withheld the class (as ``classify``
    prints it), or the status and its error. Never the patient's fields."""
    from xraydesk.cli.classify import INDETERMINATE

    what = f"{item.modality or '?'} image from {item.calling_ae or '?'}"
    if item.prediction:
        p = (item.probabilities or {}).get(item.prediction, 0.0)
        result = f"{names.get(item.prediction, item.prediction)} {p:.1%}"
    elif item.indeterminate:  # classified, no class named: say why
        result = f"{INDETERMINATE} ({', '.join(item.warnings) or 'no warning'})"
    else:
        result = f"{str(item.status).upper()}: {item.error}"
    return f"worklist #{item.id}: {what}: {result}"
