"""The int8 graph's calibration ranges, shipped per weights as the verdicts are (issue 28).

Why shipped: the ranges (the largest input value of each quantized convolution) come from
real training-split films, which do not ship with the app; tests/benchmarks/
bench_runtime.py ``--write-verdicts`` computes them and writes ``int8_ranges.json`` beside
this file, keyed by the weights' sha256. A file that is malformed or hostile (not JSON,
another format, a name that is no quantized convolution, a range that is not a positive
finite number) is refused with a message naming the file and the cause, logged once:
the runtime then simply has no int8 candidate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from xraydesk.runtime.int8_graph import KEPT_OUT, quantized_names

log = logging.getLogger(__name__)

RANGES_FILE = Path(__file__).with_name("int8_ranges.json")
RANGES_FORMAT = "xraydesk-int8-ranges/1"
MAX_BYTES = 4 << 20  # a real file is a few kB a model: anything far larger is refused
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class RangesError(ValueError):
    """A ranges file that cannot be used; the message names the file and the cause."""


@dataclass(frozen=True)
class Int8Ranges:
    kept_out: tuple[str, ...]  # convolution name prefixes left out of int8
    ranges: tuple[tuple[str, float], ...]  # (convolution, largest input value), walk order
    calibration: str  # how the ranges were measured, for people
    # the int8 graph's largest difference from the card's reference outputs on the probes
    # where the ranges were measured: a graph built here must come close (``probes``)
    probe_difference: float | None = None

    def as_dict(self) -> dict[str, float]:
        return dict(self.ranges)

    @property
    def digest(self) -> str:
        """A short hash of what the graph is built from: part of its cache name, so new
        ranges for the same weights never reuse a graph of the old ones."""
        text = json.dumps([list(self.kept_out), [list(r) for r in self.ranges]])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def ranges_entry(
    ranges: dict[str, float],
    calibration: str,
    model: str,
    kept_out: tuple[str, ...] = KEPT_OUT,
    probe_difference: float | None = None,
) -> dict[str, Any]:
    """One model's entry of the file, as ``write_ranges`` stores it."""
    entry: dict[str, Any] = {
        "model": model,
        "kept_out": list(kept_out),
        "calibration": calibration,
        "ranges": {name: float(ranges[name]) for name in quantized_names(kept_out)},
    }
    if probe_difference is not None:
        entry["probe_difference"] = float(probe_difference)
    return entry


def read_ranges(path: Path = RANGES_FILE) -> dict[str, Int8Ranges]:
    """Every model's ranges in ``path``, by weights sha256. Raises ``RangesError`` naming
    ``path`` and the cause for a file that cannot be trusted whole."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise RangesError(f"{path}: larger than {MAX_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except RangesError:
        raise
    except (OSError, UnicodeError, ValueError, RecursionError) as exc:
        raise RangesError(f"{path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != RANGES_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise RangesError(f"{path}: not a ranges file of format {RANGES_FORMAT} ({found!r})")
    models = data.get("models")
    if not isinstance(models, dict):
        raise RangesError(f"{path}: 'models' is not a mapping")
    out = {}
    for sha, entry in models.items():
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise RangesError(f"{path}: {str(sha)[:80]!r} is not a weights sha256")
        try:
            out[sha] = _entry(entry)
        except ValueError as exc:
            raise RangesError(f"{path}: model {sha[:12]}: {exc}") from exc
    return out


def _entry(entry: Any) -> Int8Ranges:
    if not isinstance(entry, dict):
        raise ValueError("the entry is not a mapping")
    kept = entry.get("kept_out")
    if not isinstance(kept, list) or tuple(kept) != KEPT_OUT:
        raise ValueError(f"kept_out {kept!r} is not this runtime's {list(KEPT_OUT)}")
    ranges, calibration = entry.get("ranges"), entry.get("calibration", "")
    if not isinstance(ranges, dict) or not isinstance(calibration, str):
        raise ValueError("'ranges' is not a mapping or 'calibration' not a text")
    expected = quantized_names(KEPT_OUT)
    unknown = sorted(set(ranges) - set(expected))
    if unknown:
        raise ValueError(f"unknown convolution names {unknown[:3]}")
    missing = [name for name in expected if name not in ranges]
    if missing:
        raise ValueError(f"no range for {missing[:3]}")
    for name in expected:
        value = ranges[name]
        if not _finite_number(value) or value <= 0:
            raise ValueError(f"the range of {name} is {value!r}, not a positive finite number")
    probe = entry.get("probe_difference")
    if probe is not None:
        if not _finite_number(probe) or not 0 <= probe < 1:
            raise ValueError(f"probe_difference {probe!r} is not a number in [0, 1)")
        probe = float(probe)
    ranges_in_order = tuple((n, float(ranges[n])) for n in expected)
    return Int8Ranges(KEPT_OUT, ranges_in_order, calibration, probe)


def _finite_number(value: Any) -> bool:
    """A JSON number that is finite (a bool is no number here)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok and math.isfinite(value)


@cache
def _shipped() -> dict[str, Int8Ranges]:
    if not RANGES_FILE.is_file():
        return {}
    try:
        return read_ranges(RANGES_FILE)
    except RangesError as exc:
        log.warning("no int8 runtime: %s", exc)  # once: the result is cached
        return {}


def shipped_ranges(weights_sha256: str) -> Int8Ranges | None:
    """The shipped ranges of these weights; None where none were measured or the file
    was refused (logged once)."""
    return _shipped().get(weights_sha256)


def shipped_range_entries() -> dict[str, Any]:
    """The file's entries as stored, by sha256 (the benchmark keeps the others when it
    writes); empty where it is missing or refused."""
    if not _shipped():
        return {}
    return dict(json.loads(RANGES_FILE.read_text(encoding="utf-8"))["models"])


def write_ranges(models: dict[str, dict[str, Any]], path: Path = RANGES_FILE) -> None:
    """Replace the shipped ranges (the benchmark's ``--write-verdicts``); each entry is
    checked as the loader checks it first."""
    from xraydesk.files import write_atomic

    for sha, entry in models.items():
        if not _SHA256.match(sha):
            raise RangesError(f"{path}: {sha!r} is not a weights sha256")
        _entry(entry)
    text = json.dumps({"format": RANGES_FORMAT, "models": models}, indent=2, sort_keys=True)
    write_atomic(path, text + "\n")
    _shipped.cache_clear()
