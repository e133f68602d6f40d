"""Train / validation / test split: stratified by pool and class, grouped by patient.

A patient's images all land in one split; otherwise a model can recognise the patient
instead of the disease and the test score flatters it. Within that constraint each
(pool, class) stratum is divided in the requested proportions, so every pool is
present in every split and per-pool test metrics exist. The split depends only on the
samples and the seed (not on the order they were listed in), and it is saved with the
model as a CSV so anyone can re-evaluate on exactly the same test images.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xraydesk.files import write_atomic
from xraydesk.trainer.dataset import DatasetError, Sample

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
SPLIT_FILE = "split.csv"
_COLUMNS = ("path", "label", "raw_label", "source", "patient", "sha256", "split")


def assign_splits(
    samples: Sequence[Sample],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> list[str]:
    """One of "train", "val", "test" per sample (same order as ``samples``).

    Greedy: groups (patients) go, largest first and otherwise in a seeded random order,
    to the split that is furthest below its target share of the group's strata.
    """
    fractions = _check_fractions(fractions)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[s.group].append(i)
    strata = {(s.source, s.label) for s in samples}
    totals = Counter((s.source, s.label) for s in samples)
    targets = {k: np.array(fractions) * totals[k] for k in strata}
    current = {k: np.zeros(len(SPLITS)) for k in strata}

    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    ordered = sorted((keys[i] for i in order), key=lambda g: -len(groups[g]))  # stable

    result = [""] * len(samples)
    for key in ordered:
        members = groups[key]
        counts = Counter((samples[i].source, samples[i].label) for i in members)
        score = np.zeros(len(SPLITS))
        for stratum, n in counts.items():
            score += n * (targets[stratum] - current[stratum]) / totals[stratum]
        chosen = int(np.argmax(score))  # ties go to the earlier split (train first)
        for stratum, n in counts.items():
            current[stratum][chosen] += n
        for i in members:
            result[i] = SPLITS[chosen]
    return result


def check_split(samples: Sequence[Sample], splits: Sequence[str], classes: Sequence[str]) -> None:
    """Refuse a split that leaves a class out of any of the three parts."""
    present = {
        name: {s.label for s, sp in zip(samples, splits, strict=True) if sp == name}
        for name in SPLITS
    }
    problems = []
    for cid in classes:
        for name in SPLITS:
            if cid not in present[name]:
                problems.append(f"class {cid!r} has no images in the {_LONG[name]} split")
    if problems:
        raise DatasetError(
            "Cannot split the data: "
            + "; ".join(problems)
            + " (too few images or patients; add data or lower the class count)."
        )


_LONG = {"train": "training", "val": "validation", "test": "test"}


def split_counts(samples: Sequence[Sample], splits: Sequence[str]) -> dict[str, dict[str, int]]:
    """split -> class -> images, for the model card."""
    table: dict[str, Counter] = {name: Counter() for name in SPLITS}
    for s, sp in zip(samples, splits, strict=True):
        table[sp][s.label] += 1
    return {name: dict(sorted(c.items())) for name, c in table.items()}


def split_summary(
    samples: Sequence[Sample], splits: Sequence[str], fractions: Sequence[float], seed: int
) -> dict:
    grouped = sum(1 for s in samples if s.patient)
    return {
        "seed": seed,
        "fractions": dict(zip(SPLITS, (float(f) for f in fractions), strict=True)),
        "grouped_by": "patient" if grouped else "image",
        "images_with_patient_id": grouped,
        "counts": split_counts(samples, splits),
        "file": SPLIT_FILE,
    }


def write_split(path: Path, samples: Sequence[Sample], splits: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for s, sp in zip(samples, splits, strict=True):
        writer.writerow(
            (str(s.path), s.label, s.raw_label, s.source, s.patient or "", s.sha256, sp)
        )
    # a file name that is not UTF-8 (bytes on Linux) comes back as it was on reading
    write_atomic(Path(path), buffer.getvalue().encode("utf-8", "surrogateescape"))


def read_split(path: Path) -> tuple[list[Sample], list[str]]:
    """Samples and their splits as saved (resuming reuses them rather than re-deriving)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read the saved split ({exc})") from exc
    samples, splits = [], []
    for row in rows:
        try:
            samples.append(
                Sample(
                    path=Path(row["path"]),
                    label=row["label"],
                    raw_label=row["raw_label"],
                    source=row["source"],
                    patient=row["patient"] or None,
                    sha256=row["sha256"],
                )
            )
            splits.append(row["split"])
        except KeyError as exc:
            raise DatasetError(f"{path}: malformed split file (missing column {exc})") from exc
    if any(sp not in SPLITS for sp in splits):
        raise DatasetError(f"{path}: malformed split file (unknown split name)")
    return samples, splits


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(not f > 0 for f in fractions):
        raise DatasetError(
            f"split fractions must be three positive numbers (train, val, test), "
            f"got {list(fractions)}"
        )
    total = float(sum(fractions))
    return tuple(float(f) / total for f in fractions)  # type: ignore[return-value]
