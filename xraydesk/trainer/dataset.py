"""Training data: where the labelled images are, and whether they are fit to train on.

A data source is a folder with one subfolder per class, or a CSV manifest with the
columns ``path,label[,patient]`` (paths relative to the manifest). A folder holding a
``manifest.csv`` is read through its manifest, because the manifest carries patient ids
that the folder layout cannot. Several sources can be combined; each keeps its name
(the "pool"), so evaluation can report every pool on its own.

Checking reads every file once: a content hash finds duplicates (the same image under
two names would leak between the splits), and a decode finds unreadable files before
an hour of training stumbles on them. Problems are reported, never fatal, unless too
little usable data is left; then training is refused with a message that says why.
"""

from __future__ import annotations

import csv
import hashlib
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xraydesk.errors import Cancelled, ImageLoadError, XRayDeskError
from xraydesk.files import missing_or_kind, read_error
from xraydesk.imaging import load_xray
from xraydesk.imaging.discover import DiscoveryStats, iter_images
from xraydesk.imaging.limits import check_file
from xraydesk.trainer.class_checks import class_name_errors, empty_class_errors, owned_by

MANIFEST_NAME = "manifest.csv"
MIN_PER_CLASS = 10  # below this a class cannot be split three ways and still be learned
KNOWN_CLASS_NAMES = {
    "normal": "Normal",
    "pneumonia": "Pneumonia",
    "covid19": "COVID-19",
    "covid-19": "COVID-19",
    "covid": "COVID-19",
    "bacterial": "Bacterial pneumonia",
    "viral": "Viral pneumonia",
    "tb": "Tuberculosis",
    "tuberculosis": "Tuberculosis",
}

# Patient ids hidden in file names, tried in order when no patient column gives one.
PATIENT_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^(person\d+)_", re.I),  # Kermany: person123_bacteria_456.jpeg
    re.compile(r"^(IM-\d+)-\d+", re.I),  # Kermany normals: IM-0115-0001.jpeg
    re.compile(r"^(\d{8})_\d{3}\.", re.I),  # NIH ChestX-ray8/14: 00000001_000.png
)

ProgressFn = Callable[[int, int], None]  # (files done, files total)
# paths -> one (sha256, problem or None) per path, in order
HashFiles = Callable[[list[Path]], Iterable[tuple[str, str | None]]]


class DatasetError(XRayDeskError):
    """The data cannot be trained on; the message lists every reason."""


@dataclass(frozen=True)
class DataSource:
    """One folder or manifest, and the pool name its images are reported under."""

    path: Path
    name: str = ""

    @classmethod
    def parse(cls, spec: str | Path) -> DataSource:
        """``PATH`` or ``NAME=PATH`` (a name of its own for a pool, e.g. in a combined run)."""
        text = str(spec)
        name, sep, rest = text.partition("=")
        if sep and name and "/" not in name and "\\" not in name and not Path(text).exists():
            return cls(Path(rest).expanduser(), name)
        return cls(Path(text).expanduser())

    @property
    def pool(self) -> str:
        if self.name:
            return self.name
        folder = self.path.parent if self.path.suffix.lower() == ".csv" else self.path
        return folder.resolve().name or str(folder)

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path.resolve()), "name": self.pool}


@dataclass(frozen=True)
class Sample:
    path: Path  # absolute
    label: str  # class id, after the label map
    source: str  # pool name
    patient: str | None = None  # as given or found in the file name; None when unknown
    raw_label: str = ""  # the label as the source gives it
    sha256: str = ""

    @property
    def group(self) -> str:
        """Images that must share a split: one patient's, or else just this file's."""
        if self.patient:
            return f"{self.source}/{self.patient}"
        return f"file/{self.sha256 or self.path}"


@dataclass
class DatasetReport:
    """What checking found: the usable samples and everything that was left out."""

    sources: list[DataSource]
    samples: list[Sample] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    class_names: dict[str, str] = field(default_factory=dict)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (left out, kept)
    conflicts: list[tuple[Path, Path, str, str]] = field(default_factory=list)
    skipped_labels: Counter = field(default_factory=Counter)  # labels not among the classes
    not_images: int = 0
    patients_from: dict[str, str] = field(default_factory=dict)  # pool -> how ids were found
    errors: list[str] = field(default_factory=list)  # reasons to refuse

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def counts(self) -> dict[str, int]:
        counter = Counter(s.label for s in self.samples)
        return {cid: counter.get(cid, 0) for cid in self.classes}

    @property
    def source_counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter] = defaultdict(Counter)
        for s in self.samples:
            table[s.source][s.label] += 1
        return {pool: dict(sorted(c.items())) for pool, c in sorted(table.items())}

    @property
    def patients(self) -> int:
        return len({s.patient and f"{s.source}/{s.patient}" for s in self.samples} - {None})

    def problems(self) -> list[str]:
        """Human sentences for everything left out (refusals come first)."""
        lines = list(self.errors)
        for path, cause in self.unreadable:
            lines.append(f"{path}: unreadable, left out ({cause})")
        for dropped, kept in self.duplicates:
            lines.append(f"{dropped}: duplicate of {kept} (same content), left out")
        for a, b, la, lb in self.conflicts:
            lines.append(
                f"{a} ({la}) and {b} ({lb}): same image with different labels, both left out"
            )
        for label, n in sorted(self.skipped_labels.items()):
            lines.append(f"{n} image(s) labelled {label!r} are not among the classes, left out")
        if self.not_images:
            lines.append(f"{self.not_images} file(s) that are not images were skipped")
        return lines

    def raise_if_refused(self) -> None:
        if self.errors:
            raise DatasetError("Cannot train on this data: " + " ".join(self.errors))

    def summary(self) -> dict[str, Any]:
        """The data section of the model card."""
        return {
            "sources": [s.to_dict() for s in self.sources],
            "images": len(self.samples),
            "patients": self.patients,
            "counts": self.counts,
            "per_source": self.source_counts,
            "patients_from": dict(self.patients_from),
            "left_out": {
                "unreadable": len(self.unreadable),
                "duplicates": len(self.duplicates),
                "conflicting_labels": 2 * len(self.conflicts),
                "other_labels": dict(self.skipped_labels),
            },
        }


def display_name(class_id: str) -> str:
    return KNOWN_CLASS_NAMES.get(class_id.lower(), class_id.replace("_", " ").capitalize())


def patient_from_name(filename: str) -> str | None:
    for pattern in PATIENT_PATTERNS:
        match = pattern.match(filename)
        if match:
            return match.group(1)
    return None


# -- reading sources ---------------------------------------------------------------------------


def read_source(source: DataSource, stats: DiscoveryStats | None = None) -> list[Sample]:
    """The raw (path, label, patient) entries of one source, without touching image files."""
    path = source.path
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        path = path / MANIFEST_NAME
    if path.is_file():
        return _read_manifest(path, source.pool)
    if path.is_dir():
        return _read_folder(path, source.pool, stats)
    raise DatasetError(f"{source.path}: {missing_or_kind(path)} (expected a folder or a CSV file)")


def _read_manifest(path: Path, pool: str) -> list[Sample]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read the manifest ({exc})") from exc
    if not rows:
        raise DatasetError(f"{path}: the manifest is empty")
    header = [h.strip().lower() for h in rows[0]]
    if "path" not in header or "label" not in header:
        raise DatasetError(
            f"{path}: a manifest needs a header row with the columns path,label[,patient] "
            f"(found {', '.join(rows[0]) or 'nothing'})"
        )
    ip, il = header.index("path"), header.index("label")
    ipat = header.index("patient") if "patient" in header else None
    base = path.parent.resolve()
    samples = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(ip, il):
            raise DatasetError(f"{path}, line {line}: expected the columns {', '.join(rows[0])}")
        rel, label = row[ip].strip(), row[il].strip()
        if not rel or not label:
            raise DatasetError(f"{path}, line {line}: empty path or label")
        file = Path(rel).expanduser()
        file = file if file.is_absolute() else base / file
        patient = row[ipat].strip() if ipat is not None and ipat < len(row) else ""
        samples.append(
            Sample(
                path=file,
                label=label,
                raw_label=label,
                source=pool,
                patient=patient or patient_from_name(file.name),
            )
        )
    return samples


def _read_folder(path: Path, pool: str, stats: DiscoveryStats | None) -> list[Sample]:
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise DatasetError(
            f"{path}: no class subfolders; put each class's images in a subfolder named after "
            "the class (e.g. normal/, pneumonia/), or give a CSV manifest"
        )
    samples, roots = [], [folder.resolve() for folder in subfolders]
    for folder, root in zip(subfolders, roots, strict=True):
        for file in iter_images([folder], recursive=True, stats=stats):
            if not owned_by(file.resolve(), root, roots):
                continue  # a link into another class's folder: its own folder labels it
            samples.append(
                Sample(
                    path=file.resolve(),
                    label=folder.name,
                    raw_label=folder.name,
                    source=pool,
                    patient=patient_from_name(file.name),
                )
            )
    return samples


# -- checking ----------------------------------------------------------------------------------


def check_dataset(
    sources: Sequence[DataSource | str | Path],
    *,
    label_map: Mapping[str, str] | None = None,
    classes: Sequence[str] | None = None,
    class_names: Mapping[str, str] | None = None,
    min_per_class: int = MIN_PER_CLASS,
    verify: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    hash_files: HashFiles | None = None,
) -> DatasetReport:
    """Read, hash and (with ``verify``) decode every image; never raises for bad files.

    ``label_map`` renames labels (``bacterial -> pneumonia``; an empty target drops the
    label); ``classes`` fixes the class order and leaves out any other label. Raises
    ``DatasetError`` only when a source itself cannot be read. ``hash_files`` replaces the
    local hashing (Spark hashes on its executors): given the paths, it returns one
    ``(sha256, problem or None)`` per path, in order.
    """
    label_map = dict(label_map or {})
    srcs = [s if isinstance(s, DataSource) else DataSource.parse(s) for s in sources]
    report = DatasetReport(sources=srcs)
    if not srcs:
        report.errors.append("No data was given.")
        return report
    pools = [s.pool for s in srcs]
    if len(set(pools)) != len(pools):
        raise DatasetError(
            f"two data sources have the same pool name ({', '.join(pools)}); name them NAME=PATH"
        )
    stats = DiscoveryStats()
    raw: list[Sample] = []
    for source in srcs:
        entries = read_source(source, stats)
        with_patient = sum(1 for s in entries if s.patient)
        report.patients_from[source.pool] = _patient_origin(source, entries, with_patient)
        raw.extend(entries)
    report.not_images = stats.not_images
    report.unreadable.extend(stats.unreadable.items())  # folders that could not be listed

    wanted = list(classes) if classes else None
    mapped: list[Sample] = []
    for s in raw:
        label = label_map.get(s.label, s.label)
        if not label or (wanted is not None and label not in wanted):
            report.skipped_labels[s.raw_label] += 1
            continue
        mapped.append(replace(s, label=label))

    total = len(mapped)
    if hash_files is not None:
        hashes: Iterable[tuple[str, str | None]] = hash_files([s.path for s in mapped])
    else:
        hashes = _local_hashes(mapped, verify, progress, cancel)
    try:
        report.samples = _unique_samples(report, mapped, hashes)
    except Cancelled:
        report.errors.append("Checking was cancelled.")
        return report

    found = sorted({s.label for s in report.samples})
    folders = [s.path for s in srcs if wanted is None and not _is_manifest(s)]
    report.errors.extend(empty_class_errors(folders, found, label_map))
    report.classes = wanted if wanted is not None else _default_order(found)
    names = dict(class_names or {})
    report.class_names = {c: names.get(c) or display_name(c) for c in report.classes}
    _refusals(report, min_per_class, total)
    return report


@dataclass
class _CheckPlan:
    """Threads for the data check, and whether results are remembered within the process
    (a GPU run checks the same pools once per held-out model: once is enough)."""

    workers: int = 1
    remember: bool = False
    seen: dict[tuple[str, int, int], tuple[str, str | None]] = field(default_factory=dict)


_CHECK = _CheckPlan()


def configure_checking(workers: int = 1, remember: bool = False) -> None:
    """Hash and decode with ``workers`` threads; ``remember`` keeps each file's result
    (keyed by path, size and modification time) for later checks in this process."""
    global _CHECK
    _CHECK = _CheckPlan(workers=max(1, int(workers)), remember=remember)


def _checked(path: Path, verify: bool) -> tuple[str, str | None]:
    plan = _CHECK
    if not plan.remember:
        return _hash_and_verify(path, verify)
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
    except OSError:
        return _hash_and_verify(path, verify)
    if key not in plan.seen:
        plan.seen[key] = _hash_and_verify(path, verify)
    return plan.seen[key]


def _local_hashes(
    samples: Sequence[Sample],
    verify: bool,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> Iterator[tuple[str, str | None]]:
    total = len(samples)
    workers = _CHECK.workers
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        chunk = 64 * workers
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, total, chunk):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("Checking was cancelled.")
                part = [s.path for s in samples[start : start + chunk]]
                for done, result in enumerate(
                    pool.map(lambda path: _checked(path, verify), part), start=start + 1
                ):
                    if progress is not None:
                        progress(done, total)
                    yield result
        return
    for done, s in enumerate(samples, start=1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Checking was cancelled.")
        result = _checked(s.path, verify)
        if progress is not None:
            progress(done, total)
        yield result


def _unique_samples(
    report: DatasetReport, samples: Sequence[Sample], hashes: Iterable[tuple[str, str | None]]
) -> list[Sample]:
    """Samples with their content hash, each image once: an unreadable file, a duplicate
    and an image carrying two different labels are recorded in the report and left out."""
    first_by_hash: dict[str, Sample] = {}
    conflicted: set[str] = set()
    usable: list[Sample] = []
    for s, (digest, cause) in zip(samples, hashes, strict=True):
        if cause is not None:
            report.unreadable.append((s.path, cause))
            continue
        s = replace(s, sha256=digest)
        kept = first_by_hash.get(digest)
        if kept is None:
            first_by_hash[digest] = s
            usable.append(s)
        elif kept.label != s.label:
            report.conflicts.append((kept.path, s.path, kept.label, s.label))
            conflicted.add(digest)
        else:
            report.duplicates.append((s.path, kept.path))
    return [s for s in usable if s.sha256 not in conflicted]


def _patient_origin(source: DataSource, entries: list[Sample], with_patient: int) -> str:
    if not entries:
        return "none"
    if with_patient == 0:
        return "none (each image counts as its own patient)"
    how = "manifest column or file names" if _is_manifest(source) else "file names"
    return f"{how} ({with_patient} of {len(entries)} images)"


def _is_manifest(source: DataSource) -> bool:
    p = source.path
    return p.is_file() or (p / MANIFEST_NAME).is_file()


def _default_order(found: Iterable[str]) -> list[str]:
    """Alphabetical, except that 'normal' comes first: it reads best in tables."""
    found = sorted(found)
    return sorted(found, key=lambda c: (c.lower() != "normal", c))


def _refusals(report: DatasetReport, min_per_class: int, total: int) -> None:
    counts = report.counts
    if total == 0:
        report.errors.append("No labelled images were found.")
        return
    if not report.samples:
        report.errors.append("None of the images could be used (see the problems listed).")
        return
    report.errors.extend(class_name_errors(report.classes))
    present = [c for c, n in counts.items() if n > 0]
    if len(present) < 2:
        only = present[0] if present else "none"
        report.errors.append(
            f"Only one class has images ({only}); a classifier needs at least two classes."
        )
    for cid, n in counts.items():
        if n < min_per_class:
            report.errors.append(
                f"Class {cid!r} has {n} usable image(s); at least {min_per_class} are needed "
                "to train, validate and test."
            )


def _hash_and_verify(path: Path, verify: bool) -> tuple[str, str | None]:
    try:
        check_file(path)  # on stat: a pipe named x.png must not block, nor a huge file load
    except ImageLoadError as exc:
        return "", exc.cause
    try:
        data = path.read_bytes()
    except OSError as exc:
        return "", read_error(exc)
    digest = hashlib.sha256(data).hexdigest()
    if verify:
        try:
            load_xray(path)
        except ImageLoadError as exc:
            return digest, exc.cause
    return digest, None
