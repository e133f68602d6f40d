"""``NAME=VALUE`` options (``--map bacterial=pneumonia``, ``--conf spark.x=y``), parsed once."""

from __future__ import annotations

from collections.abc import Iterable

from xraydesk.errors import XRayDeskError


def parse_pairs(items: Iterable[str], option: str, form: str = "KEY=VALUE") -> dict[str, str]:
    """``{name: value}`` from ``NAME=VALUE`` strings (names stripped of spaces, values too
    unless they are all spaces); a missing ``=`` or name is a usage error naming ``option``."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise XRayDeskError(f"{option} {item!r}: expected {form}")
        pairs[name.strip()] = value.strip() or value
    return pairs
