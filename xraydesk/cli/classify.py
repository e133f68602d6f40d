"""``xraydesk classify``: probabilities for files and folders, as a table, JSON lines or CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xraydesk.batch.discover import DiscoveryStats, iter_images
from xraydesk.batch.engine import classify_paths
from xraydesk.batch.results import ResultRow, csv_header, csv_record
from xraydesk.errors import XRayDeskError
from xraydesk.explain.export import write_cam_png
from xraydesk.model.classifier import Classifier
from xraydesk.model.device import DEVICE_CHOICES
from xraydesk.model.library import resolve_model


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "classify",
        help="classify radiographs (files or folders)",
        description="Print the probability of each class for every image. Exit status: 0 when "
        "every file was classified, 1 when some failed, 2 for usage errors.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    parser.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write the rows to FILE")
    parser.add_argument("--cam-dir", type=Path, metavar="DIR", help="write Grad-CAM overlays here")
    parser.add_argument(
        "--model", metavar="NAME|PATH", help="model name or card path (default: the default model)"
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    card = resolve_model(args.model)
    classifier = Classifier.load(card, device=args.device)
    print(f"model {card.label} on {classifier.device.label}", file=sys.stderr)
    ids = classifier.class_ids
    stats = DiscoveryStats()
    csv_file = _open_output(args.csv) if args.csv else None
    writer = None
    if csv_file is not None:
        import csv

        writer = csv.writer(csv_file)
        writer.writerow(csv_header(ids))
    if not args.json:
        print(_table_line(["FILE", "PREDICTION", *(card.display_names[c] for c in ids)]))
    failed = total = 0
    try:
        for row in classify_paths(iter_images(args.paths, args.recursive, stats), classifier):
            total += 1
            failed += not row.ok
            if row.ok and args.cam_dir is not None:
                _write_cam(classifier, row, args.cam_dir)
            print(_format_row(row, ids, args.json, card.display_names), flush=True)
            if writer is not None:
                writer.writerow(csv_record(row, ids))
    finally:
        if csv_file is not None:
            csv_file.close()
    _summary(total, failed, stats)
    return 1 if failed else 0


def _open_output(path: Path):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise XRayDeskError(f"{path}: cannot write the CSV file ({exc.strerror or exc})") from exc


def _write_cam(classifier: Classifier, row: ResultRow, cam_dir: Path) -> None:
    try:
        write_cam_png(classifier, row.path, cam_dir)
    except (XRayDeskError, OSError) as exc:
        print(f"xraydesk: {row.path}: Grad-CAM not written ({exc})", file=sys.stderr)


def _format_row(row: ResultRow, ids: list[str], as_json: bool, names: dict[str, str]) -> str:
    if as_json:
        import json

        return json.dumps(row.to_json_dict())
    if not row.ok:
        return _table_line([str(row.path), f"ERROR: {row.error}"])
    probs = row.probabilities or {}
    return _table_line(
        [str(row.path), names.get(row.prediction or "", ""), *(f"{probs[c]:6.1%}" for c in ids)]
    )


def _table_line(cells: list[str]) -> str:
    return "\t".join(cells)


def _summary(total: int, failed: int, stats: DiscoveryStats) -> None:
    parts = [f"{total - failed} of {total} classified"]
    if failed:
        parts.append(f"{failed} failed")
    if stats.not_images:
        parts.append(f"{stats.not_images} non-image files skipped")
    if stats.hidden:
        parts.append(f"{stats.hidden} hidden entries skipped")
    print("xraydesk: " + ", ".join(parts), file=sys.stderr)
