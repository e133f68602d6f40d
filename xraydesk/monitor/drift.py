"""Drift: has what a site sends moved away from its validation baseline?

A deployment must notice when the images change (another scanner, another population, a
new referral pattern): the model's answers then no longer carry the accuracy measured
at validation. Three figures are compared with the baseline: the mix of predicted
classes, the indeterminate rate (images given no class) and the out-of-distribution
rate (images with the ``out_of_distribution`` warning).

The tests, documented because a bare percentage would cry wolf on small days and miss
a real shift on large ones. A figure drifts only when the change is both *significant*
and *large*:

- class mix: Pearson's chi-square test of homogeneity on the 2 x K table (baseline and
  current images per predicted class; classes with fewer than ``MIN_CELL`` images in
  both together are pooled into one column so that the approximation holds) gives p,
  and the total-variation distance ``TVD = 1/2 sum |p_baseline - p_current|`` (the
  share of images that would have to change class) measures the size. Drift: p < alpha
  (default 0.01) and TVD >= max_tvd (default 0.15).
- a rate: the chi-square test on the 2 x 2 table (with Yates' correction) gives p.
  Drift: p < alpha and |rate - baseline rate| >= max_rate_change (default 0.10).

Each side needs at least ``min_images`` images (default 30); below that the figure is
reported as "too few images to judge", never as drift or as no drift.

The baseline is a site validation report (the ``OUT.json`` of ``xraydesk validate``: the
predicted classes, withheld images and warnings of its image rows), a baseline file
written by ``xraydesk monitor --save-baseline``, or a period of the results database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xraydesk.files import write_atomic
from xraydesk.monitor.chi2 import contingency
from xraydesk.monitor.daily import DayStats, MonitorError, not_a_file
from xraydesk.trust.codes import OUT_OF_DISTRIBUTION

BASELINE_FORMAT = "xraydesk-monitor-baseline/1"
REPORT_FORMAT = "xraydesk-site-validation/1"
MIN_CELL = 5


@dataclass(frozen=True)
class Thresholds:
    """When a change counts as drift (see the module's docstring)."""

    alpha: float = 0.01
    max_tvd: float = 0.15
    max_rate_change: float = 0.10
    min_images: int = 30


@dataclass(frozen=True)
class Baseline:
    """The counts drift is judged against."""

    source: str  # what it came from, for people
    model: str | None  # "name version"; None: not stated
    images: int
    classes: dict[str, int] = field(default_factory=dict)
    indeterminate: int = 0
    ood: int = 0

    @classmethod
    def from_stats(cls, stats: DayStats, source: str) -> Baseline:
        return cls(
            source, stats.model, stats.images, dict(stats.classes), stats.indeterminate, stats.ood
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BASELINE_FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": self.source,
            "model": self.model,
            "images": self.images,
            "classes": dict(sorted(self.classes.items())),
            "indeterminate": self.indeterminate,
            "out_of_distribution": self.ood,
        }

    def write(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.to_json(), indent=1) + "\n")


def load_baseline(path: Path) -> Baseline:
    """A validation report or a saved baseline; a clear error for anything else."""
    cause = not_a_file(path)
    if cause is not None:
        raise MonitorError(f"{path}: cannot read the baseline ({cause})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read the baseline ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MonitorError(f"{path}: the baseline is not JSON ({exc})") from exc
    kind = data.get("format") if isinstance(data, dict) else None
    try:
        if kind == REPORT_FORMAT:
            return _from_report(data, path)
        if kind == BASELINE_FORMAT:
            return Baseline(
                source=str(data.get("source") or path.name),
                model=data.get("model"),
                images=int(data["images"]),
                classes={str(k): int(v) for k, v in data["classes"].items()},
                indeterminate=int(data["indeterminate"]),
                ood=int(data["out_of_distribution"]),
            )
    except KeyError as exc:
        raise MonitorError(f"{path}: the baseline lacks the field {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise MonitorError(f"{path}: the baseline has a malformed field ({exc})") from exc
    raise MonitorError(
        f"{path}: not a baseline (expected a site validation report, {REPORT_FORMAT}, "
        f"or a file from `xraydesk monitor --save-baseline`, {BASELINE_FORMAT})"
    )


def _from_report(data: dict[str, Any], path: Path) -> Baseline:
    """The report's image rows as the database would have counted them."""
    classes: dict[str, int] = {}
    indeterminate = ood = 0
    rows = data["images"]
    for row in rows:
        no_class = bool(row.get("withheld")) or row.get("prediction") is None
        if no_class or row.get("indeterminate"):
            indeterminate += 1
        if not no_class:
            classes[row["prediction"]] = classes.get(row["prediction"], 0) + 1
        if OUT_OF_DISTRIBUTION in (row.get("warnings") or []):
            ood += 1
    model = (data.get("model") or {}).get("label")
    return Baseline(f"validation report {path.name}", model, len(rows), classes, indeterminate, ood)


@dataclass(frozen=True)
class DriftCheck:
    """One figure compared with the baseline."""

    figure: str  # "class mix", "indeterminate rate", "out-of-distribution rate"
    baseline: str
    current: str
    test: str  # the statistic and p, or why it was not judged
    judged: bool
    drifted: bool

    @property
    def line(self) -> str:
        verdict = "DRIFT" if self.drifted else "ok" if self.judged else "not judged"
        return f"{verdict}: {self.figure}: {self.current} (baseline {self.baseline}); {self.test}"


def check_drift(baseline: Baseline, current: DayStats, limits: Thresholds) -> list[DriftCheck]:
    """The class mix, the indeterminate rate and the OOD rate against the baseline."""
    return [
        class_mix_check(baseline.classes, current.classes, limits),
        rate_check(
            "indeterminate rate",
            (baseline.indeterminate, baseline.images),
            (current.indeterminate, current.images),
            limits,
        ),
        rate_check(
            "out-of-distribution rate",
            (baseline.ood, baseline.images),
            (current.ood, current.images),
            limits,
        ),
    ]


def class_mix_check(
    baseline: dict[str, int], current: dict[str, int], limits: Thresholds
) -> DriftCheck:
    names = sorted(set(baseline) | set(current))
    b = [baseline.get(c, 0) for c in names]
    c = [current.get(c, 0) for c in names]
    nb, nc = sum(b), sum(c)
    shown_b, shown_c = _mix(names, b), _mix(names, c)
    if min(nb, nc) < limits.min_images:
        return DriftCheck(
            "class mix", shown_b, shown_c, _too_few(nb, nc, limits), judged=False, drifted=False
        )
    tvd = 0.5 * sum(abs(x / nb - y / nc) for x, y in zip(b, c, strict=True))
    table = _pooled(b, c)
    p = 1.0
    if len(table[0]) >= 2:
        stat, p, dof = contingency(table)
        test = f"chi-square {stat:.1f} on {dof} df, p={p:.2g}, total variation {tvd:.2f}"
    else:
        test = f"one class only, total variation {tvd:.2f}"
    drifted = p < limits.alpha and tvd >= limits.max_tvd
    return DriftCheck("class mix", shown_b, shown_c, test, judged=True, drifted=drifted)


def rate_check(
    figure: str, baseline: tuple[int, int], current: tuple[int, int], limits: Thresholds
) -> DriftCheck:
    (kb, nb), (kc, nc) = baseline, current
    shown_b = f"{kb / nb:.1%} of {nb}" if nb else "no images"
    shown_c = f"{kc / nc:.1%} of {nc}" if nc else "no images"
    if min(nb, nc) < limits.min_images:
        return DriftCheck(figure, shown_b, shown_c, _too_few(nb, nc, limits), False, False)
    change = kc / nc - kb / nb
    p = 1.0
    if (kb + kc) > 0 and (nb - kb + nc - kc) > 0:
        _, p, _ = contingency([[kb, nb - kb], [kc, nc - kc]], correction=True)
    drifted = p < limits.alpha and abs(change) >= limits.max_rate_change
    test = f"change {change:+.1%}, chi-square p={p:.2g}"
    return DriftCheck(figure, shown_b, shown_c, test, judged=True, drifted=drifted)


def _pooled(b: list[int], c: list[int]) -> list[list[int]]:
    """The 2 x K table with the small columns pooled into one (MIN_CELL)."""
    keep = [(x, y) for x, y in zip(b, c, strict=True) if x + y >= MIN_CELL]
    small = [(x, y) for x, y in zip(b, c, strict=True) if 0 < x + y < MIN_CELL]
    if small:
        keep.append((sum(x for x, _ in small), sum(y for _, y in small)))
    return [[x for x, _ in keep], [y for _, y in keep]]


def _mix(names: list[str], counts: list[int]) -> str:
    total = sum(counts)
    if not total:
        return "no answers"
    return ", ".join(f"{n} {k / total:.0%}" for n, k in zip(names, counts, strict=True) if k)


def _too_few(nb: int, nc: int, limits: Thresholds) -> str:
    return (
        f"too few images to judge ({nb} baseline, {nc} now; "
        f"at least {limits.min_images} each are needed)"
    )
