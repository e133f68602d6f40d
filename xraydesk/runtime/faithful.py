"""Faithful: an exported runtime gives the results fp32 torch gives, by a fixed bar.

Against fp32 torch on the whole test split of a model: the same top class on at least
99.5 % of images, mean absolute probability difference at most 0.003 and maximum at most
0.02. ``tests/benchmarks/bench_runtime.py`` measures each runtime and precision on each
bundled model's whole test split (torch's bf16 too, as the batch engine runs it) and
writes the verdicts into ``verdicts.json`` beside this file, keyed by the weights' sha256;
``select`` chooses a reduced precision or an exported runtime automatically only where its
verdict for those exact weights passed, and runs torch at fp32 where its bf16 failed.

Why a shipped verdict and not a check at first use: the bar is about real radiographs of
the model's own test split, which do not ship with the app (no patient image does), and
measuring thousands of images at start-up would cost minutes. A few probes at first use
cannot tell bf16 rounding that flips 1 % of borderline cases from rounding that flips
none; they can tell a broken export, and ``probes`` checks that on every new graph.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

VERDICTS_FILE = Path(__file__).with_name("verdicts.json")
VERDICTS_FORMAT = "xraydesk-runtime-verdicts/1"


@dataclass(frozen=True)
class Bar:
    same_top: float = 0.995  # fraction of images whose top class is fp32 torch's
    mean_abs: float = 0.003  # mean absolute probability difference (over images and classes)
    max_abs: float = 0.02  # largest absolute probability difference


BAR = Bar()


@dataclass(frozen=True)
class Faithfulness:
    images: int
    same_top: float
    mean_abs: float
    max_abs: float
    # bf16 rechecked at fp32 (``recheck``): the largest error of a logit difference
    # (``recheck.difference_error``) against fp32 torch on the validation split, from
    # which the rows to run again are decided
    logit_error: float | None = None

    @property
    def passed(self) -> bool:
        return (
            self.images > 0
            and self.same_top >= BAR.same_top
            and self.mean_abs <= BAR.mean_abs
            and self.max_abs <= BAR.max_abs
        )

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "passed": self.passed}
        if self.logit_error is None:
            del data["logit_error"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faithfulness:
        return cls(
            int(data["images"]),
            float(data["same_top"]),
            float(data["mean_abs"]),
            float(data["max_abs"]),
            float(data["logit_error"]) if data.get("logit_error") is not None else None,
        )


def compare(reference: np.ndarray, probabilities: np.ndarray) -> Faithfulness:
    """How far ``probabilities`` (N, classes) are from fp32 torch's ``reference``."""
    reference = np.asarray(reference, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if reference.shape != probabilities.shape or reference.ndim != 2:
        raise ValueError(f"shapes differ: {reference.shape} and {probabilities.shape}")
    diff = np.abs(reference - probabilities)
    same = np.argmax(reference, axis=1) == np.argmax(probabilities, axis=1)
    return Faithfulness(
        images=len(reference),
        same_top=float(same.mean()) if len(same) else 0.0,
        mean_abs=float(diff.mean()) if diff.size else 0.0,
        max_abs=float(diff.max()) if diff.size else 0.0,
    )


@cache
def _shipped() -> dict[str, Any]:
    try:
        data = json.loads(VERDICTS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if data.get("format") != VERDICTS_FORMAT:
        return {}
    return data.get("models", {})


def shipped_entries() -> dict[str, Any]:
    """Every model's entry in the shipped verdicts, by weights sha256 (the benchmark keeps
    those of the models it did not measure when it writes the file)."""
    return dict(_shipped())


def shipped_verdict(weights_sha256: str, runtime: str, precision: str) -> Faithfulness | None:
    """The measured verdict for these weights, runtime and precision; None if never measured."""
    entry = _shipped().get(weights_sha256, {}).get("measured", {}).get(f"{runtime}/{precision}")
    return Faithfulness.from_dict(entry) if entry else None


def write_verdicts(models: dict[str, dict[str, Any]], path: Path = VERDICTS_FILE) -> None:
    """Replace the shipped verdicts (the benchmark's ``--write-verdicts``)."""
    from xraydesk.files import write_atomic

    text = json.dumps({"format": VERDICTS_FORMAT, "models": models}, indent=2, sort_keys=True)
    write_atomic(path, text + "\n")
    _shipped.cache_clear()
