"""One classified file, as the CLI prints it, the GUI shows it and the database stores it."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass
class ResultRow:
    path: Path
    model: str  # "name version"
    prediction: str | None = None
    probabilities: dict[str, float] | None = None
    error: str | None = None
    content_hash: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "model": self.model,
            "prediction": self.prediction,
            "probabilities": self.probabilities,
            "error": self.error,
        }


def csv_header(class_ids: Sequence[str]) -> list[str]:
    return ["path", "model", "prediction", *(f"p_{cid}" for cid in class_ids), "sha256", "error"]


def csv_record(row: ResultRow, class_ids: Sequence[str]) -> list[str]:
    probs = row.probabilities or {}
    cells = [f"{probs[c]:.6f}" if c in probs else "" for c in class_ids]
    return [
        str(row.path),
        row.model,
        row.prediction or "",
        *cells,
        row.content_hash or "",
        row.error or "",
    ]


def write_csv(rows: Iterable[ResultRow], class_ids: Sequence[str], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(csv_header(class_ids))
    count = 0
    for row in rows:
        writer.writerow(csv_record(row, class_ids))
        count += 1
    return count


def write_json_lines(rows: Iterable[ResultRow], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row.to_json_dict()) + "\n")
        count += 1
    return count
