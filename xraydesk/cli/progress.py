"""The command line's one progress display: a tqdm bar on a terminal, nothing on a pipe.

``classify``, ``validate`` and ``train`` all draw their engine's ``Progress`` records
(xraydesk.progress) through ``TerminalBar``. Piped or redirected
output never gets a bar (no carriage returns or escape codes in a log file); the
callers decide that with ``is_terminal`` and print plain lines instead.
"""

from __future__ import annotations

import time
from typing import IO

from tqdm import tqdm

from xraydesk.progress import Progress

# "[#####.....] 12/40 text": the count, then what the caller says (rate, ETA, loss...).
BAR_FORMAT = "[{bar}] {n_fmt}/{total_fmt} {desc}"


def is_terminal(stream: IO[str]) -> bool:
    """True when ``stream`` is an interactive terminal (never raises)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class TerminalBar:
    """One bar line on ``stream``, redrawn at most every ``interval`` seconds.

    ``write_above`` clears the bar, prints a line (to stdout or the bar's own stream)
    and draws the bar again, so result rows and the bar never mix on one line.
    """

    def __init__(self, stream: IO[str], interval: float = 0.1) -> None:
        self.stream = stream
        self.interval = interval
        self._bar: tqdm | None = None  # created on the first report: nothing drawn before
        self._drawn_at = 0.0

    def draw(self, progress: Progress, text: str, *, force: bool = False) -> None:
        """Show the record's count with ``text``; redraw if ``interval`` has passed (or
        ``force``). An unknown total (None or 0) draws a count without a bar."""
        done, total = progress.done, progress.total or None
        if self._bar is None:
            self._bar = tqdm(  # draws itself once, as it is now
                desc=text,
                total=total,
                initial=done,
                file=self.stream,
                bar_format=BAR_FORMAT,
                ascii=".#",
                dynamic_ncols=True,
                leave=False,
                disable=False,  # the caller has decided this stream gets a bar
            )
            self._drawn_at = time.monotonic()
            return
        bar = self._bar
        bar.total = total
        bar.n = done
        bar.set_description_str(text, refresh=False)
        now = time.monotonic()
        if force or now - self._drawn_at >= self.interval:
            bar.refresh()
            self._drawn_at = now

    def write_above(self, line: str, out: IO[str]) -> None:
        if self._bar is not None:
            self._bar.clear()
        print(line, file=out, flush=True)
        if self._bar is not None:
            self._bar.refresh()
            self._drawn_at = time.monotonic()

    def close(self) -> None:
        """Remove the bar from the screen (the line is left empty)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.stream.flush()
