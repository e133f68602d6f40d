"""Pearson's chi-square test of homogeneity, without scipy (not a dependency of XRayDesk).

``contingency`` returns the statistic, its p-value and the degrees of freedom of an
r x c table of counts, as ``scipy.stats.chi2_contingency`` does (with Yates' continuity
correction for a 2 x 2 table when asked). The p-value is the chi-square distribution's
upper tail for an integer number of degrees of freedom, in closed form (the regularized
upper incomplete gamma function at a half-integer), so it is exact to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def contingency(
    table: Sequence[Sequence[int]], correction: bool = False
) -> tuple[float, float, int]:
    """(statistic, p, degrees of freedom). Rows or columns that are all zero are left
    out (they carry no information); fewer than 2 of either: (0.0, 1.0, 0)."""
    rows = [list(map(float, r)) for r in table if sum(r) > 0]
    if len(rows) < 2:
        return 0.0, 1.0, 0
    cols = [j for j in range(len(rows[0])) if sum(r[j] for r in rows) > 0]
    if len(cols) < 2:
        return 0.0, 1.0, 0
    rows = [[r[j] for j in cols] for r in rows]
    total = sum(map(sum, rows))
    row_sums = [sum(r) for r in rows]
    col_sums = [sum(r[j] for r in rows) for j in range(len(cols))]
    dof = (len(rows) - 1) * (len(cols) - 1)
    stat = 0.0
    for i, r in enumerate(rows):
        for j, observed in enumerate(r):
            expected = row_sums[i] * col_sums[j] / total
            diff = abs(observed - expected)
            if correction and dof == 1:
                diff = max(diff - 0.5, 0.0)  # Yates, as scipy: never past the expected count
            stat += diff * diff / expected
    return stat, chi2_sf(stat, dof), dof


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X chi-square with ``dof`` (a positive integer) degrees of freedom."""
    if x <= 0:
        return 1.0
    half = x / 2.0
    if dof % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, dof // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    total = math.erfc(math.sqrt(half))
    for i in range((dof - 1) // 2):
        a = i + 0.5
        total += math.exp(a * math.log(half) - half - math.lgamma(a + 1.0))
    return min(1.0, total)
