"""Durations as people read them: one formatter for the CLI, the batch panel and the wizard."""

from __future__ import annotations


def format_duration(seconds: float | None, *, rounded: bool = False) -> str:
    """A clock ('1:02:03', '4:05', '--:--' when unknown) for progress that ticks, or, with
    ``rounded``, a spoken estimate ('45 s', '12 min', '1.5 h') for a time not yet spent."""
    if seconds is None:
        return "unknown" if rounded else "--:--"
    seconds = max(0.0, seconds)
    if rounded:
        if seconds < 90:
            return f"{max(1, round(seconds))} s"
        if seconds < 5400:
            return f"{round(seconds / 60)} min"
        return f"{seconds / 3600:.1f} h"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
