"""Training manifests for tests: rows of the real Kermany pool (paths into ../shared/data,
read in place) written as the CSV manifest the trainer reads."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

POOL = "kermany-pediatric"


def kermany_rows(shared_data: Path, per_class: int, labels=("normal", "bacterial", "viral")):
    """The first ``per_class`` manifest rows of each label, with absolute paths."""
    pool = shared_data / POOL
    taken: Counter = Counter()
    rows = []
    with open(pool / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["label"] in labels and taken[row["label"]] < per_class:
                taken[row["label"]] += 1
                rows.append((str(pool / row["path"]), row["label"], row["patient"]))
    return rows


def write_manifest(path: Path, rows, header=("path", "label", "patient")) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path
