"""Which class each of a site's images is: class subfolders, or a CSV of path and label.

A site's label names need not be the model's class ids: ``--map bacterial=pneumonia``
says what a name means. A label that is neither a class id, a class's display name nor
mapped is refused with the list of the model's classes, never silently dropped: a
validation that quietly leaves out a class measures something else.
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from xraydesk.errors import XRayDeskError
from xraydesk.files import non_file_kind, path_problem
from xraydesk.imaging.discover import DiscoveryStats, iter_images

SKIP = "skip"  # --map NAME=skip leaves that label's images out, on purpose and in the report


class LabelError(XRayDeskError):
    """The labelled folder or its CSV cannot be used (the message names it and why)."""


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    name: str  # path relative to the site folder, as the report shows it
    site_label: str  # the label as the site wrote it
    label: str  # the model's class id
    patient: str | None = None  # the CSV's patient column: keeps a patient in one split


@dataclass
class LabelledSet:
    folder: Path
    source: str  # "subfolders" or the CSV's path
    images: list[LabelledImage]
    mapping: dict[str, str]  # site label -> class id (or SKIP) for every label seen
    skipped: int = 0  # images left out by --map NAME=skip
    total_before_sample: int = 0

    def per_class(self, class_ids: Sequence[str]) -> dict[str, int]:
        counts = dict.fromkeys(class_ids, 0)
        for image in self.images:
            counts[image.label] += 1
        return counts


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["bacterial=pneumonia", ...]`` as a dict; a malformed item is a LabelError."""
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise LabelError(f"--map {item!r}: expected SITE_LABEL=CLASS, e.g. viral=pneumonia")
        mapping[name.strip()] = target.strip()
    return mapping


def load_labelled(
    folder: str | os.PathLike[str],
    class_ids: Sequence[str],
    display_names: Mapping[str, str],
    mapping: Mapping[str, str] | None = None,
    csv_path: str | os.PathLike[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
    hide_names: bool = False,
) -> LabelledSet:
    """The labelled images of ``folder`` with their class ids, in a stable order.

    ``sample`` keeps a seeded random subset of that many images (a quick look at a
    large site); the same seed gives the same subset. ``hide_names`` names the images
    CLASS/image-N in the report, for sites whose file names carry patient identifiers."""
    root = Path(folder)
    problem = path_problem(folder)  # before exists(), which raises on a path too long
    if problem is not None:
        raise LabelError(f"{root}: {problem}")
    if not root.exists():
        raise LabelError(f"{root}: the folder does not exist")
    if not root.is_dir():
        raise LabelError(f"{root}: not a folder (give the folder holding the site's images)")
    if csv_path is not None:
        pairs, source = _pairs_from_csv(root, Path(csv_path)), str(csv_path)
    else:
        pairs, source = _pairs_from_subfolders(root), "subfolders"
    resolve = _resolver(class_ids, display_names, dict(mapping or {}), source)
    images, used, skipped = [], {}, 0
    for path, site_label, patient in pairs:
        target = resolve(site_label)
        used[site_label] = target
        if target == SKIP:
            skipped += 1
            continue
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        images.append(LabelledImage(path, name, site_label, target, patient))
    if not images:
        raise LabelError(f"{root}: no labelled image left to validate ({skipped} skipped by --map)")
    total = len(images)
    if sample is not None and sample < 1:
        raise LabelError(f"--sample {sample}: give a number of images of at least 1")
    if sample is not None and sample < total:
        keep = sorted(random.Random(seed).sample(range(total), sample))
        images = [images[i] for i in keep]
    if hide_names:  # file names that may carry identifiers never reach the report
        width = len(str(len(images)))
        images = [
            replace(image, name=f"{image.label}/image-{i:0{width}d}{image.path.suffix.lower()}")
            for i, image in enumerate(images, start=1)
        ]
    return LabelledSet(root, source, images, used, skipped, total)


def _pairs_from_subfolders(root: Path) -> list[tuple[Path, str, str | None]]:
    try:
        subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise LabelError(f"{root}: cannot list the folder ({exc.strerror or exc})") from exc
    if not subfolders:
        raise LabelError(
            f"{root}: no class subfolders (expected one folder per label, e.g. normal/ and "
            "pneumonia/, or give --labels FILE.csv with the columns path and label)"
        )
    pairs = []
    for sub in subfolders:
        stats = DiscoveryStats()
        found = [Path(p) for p in iter_images([sub], True, stats)]
        if stats.unreadable:  # a folder that cannot be listed, a link loop: the first
            bad, cause = next(iter(stats.unreadable.items()))
            raise LabelError(f"{bad}: {cause}")
        pairs += [(p, sub.name, None) for p in found]
    if not pairs:
        names = ", ".join(s.name for s in subfolders)
        raise LabelError(f"{root}: no image found in its class subfolders ({names})")
    return pairs


def _pairs_from_csv(root: Path, csv_path: Path) -> list[tuple[Path, str, str | None]]:
    # Before opening: a named pipe waits forever for a writer and /dev/zero never ends.
    # The GUI's validation wizard comes here without the command line's checks.
    problem = path_problem(csv_path)
    if problem is not None:
        raise LabelError(f"{csv_path}: cannot read the labels file ({problem})")
    kind = non_file_kind(csv_path)
    if kind is not None:
        raise LabelError(f"{csv_path}: the labels file is {kind}, not a file; not read")
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            fields = [f.strip().lower() for f in reader.fieldnames or []]
    except FileNotFoundError as exc:
        raise LabelError(f"{csv_path}: the labels file does not exist") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{csv_path}: cannot read the labels file ({exc})") from exc
    if not rows:
        raise LabelError(f"{csv_path}: the labels file has no rows")
    if "path" not in fields or "label" not in fields:
        raise LabelError(f"{csv_path}: the labels file needs the columns path and label")
    pairs = []
    for line, raw in enumerate(rows, start=2):
        # cells past the header's columns come under the key None: not a path or label
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not row["path"] or not row["label"]:
            raise LabelError(f"{csv_path}, line {line}: empty path or label")
        path = Path(row["path"])
        path = path if path.is_absolute() else root / path
        problem = _image_problem(path)
        if problem is not None:
            raise LabelError(f"{csv_path}, line {line}: {path}: {problem}")
        pairs.append((path, row["label"], row.get("patient") or None))
    return pairs


def _image_problem(path: Path) -> str | None:
    """Why a CSV row's image cannot be read; None for a regular file. ``is_file`` alone
    raised on a path too long and called a loop or a named pipe "does not exist"."""
    with contextlib.suppress(OSError):
        if path.is_file():  # one stat for a good row; the causes only for a bad one
            return None
    kind = non_file_kind(path)
    return path_problem(path) or (
        f"it is {kind}, not an image file" if kind else "the image does not exist"
    )


def _resolver(
    class_ids: Sequence[str], display_names: Mapping[str, str], mapping: dict[str, str], source: str
):
    known = {cid.lower(): cid for cid in class_ids}
    known.update({display_names.get(cid, cid).lower(): cid for cid in class_ids})
    for name, target in mapping.items():
        if target != SKIP and target.lower() not in known:
            raise LabelError(
                f"--map {name}={target}: the model has no class {target!r} "
                f"(its classes: {', '.join(class_ids)}; or {SKIP} to leave {name} out)"
            )

    def resolve(site_label: str) -> str:
        target = mapping.get(site_label, site_label)
        if target == SKIP:
            return SKIP
        cid = known.get(target.lower())
        if cid is None:
            raise LabelError(
                f"label {site_label!r} (from {source}) is not one of the model's classes "
                f"({', '.join(class_ids)}); say what it means with --map "
                f"{site_label}=CLASS, or --map {site_label}={SKIP} to leave it out"
            )
        return cid

    return resolve
