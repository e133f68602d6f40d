"""Text from outside (DICOM headers, a PACS's answers, file names) made safe to print.

Why: a Patient ID of ``\\x1b]0;...\\x07\\x1b[2J\\n...`` printed as it is retitles and clears
the terminal and forges table rows, and an AE title with a newline forges log lines. Every
CLI table and every log line that shows such a value passes it through ``printable``:
one line, no control characters (C0, C1, DEL) and no invisible format characters (the
bidirectional overrides), each shown as a visible escape instead. Shared by every layer
(logs in ``dicomnet``, tables in ``cli``), so it lives at the top and imports nothing.
"""

from __future__ import annotations

_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(value: object) -> str:
    """``value`` as one printable line: ``\\t``, ``\\n``, ``\\x1b``, ``\\u202e`` escapes for
    what a terminal would act on; bytes that are not UTF-8 (a file name) as ``\\xe9``."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if text.isprintable():
        return text
    return "".join(_escape(c) for c in text)


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    known = _ESCAPES.get(char)
    if known:
        return known
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def table_line(cells: list[object]) -> str:
    """A tab-separated row whose cells cannot add columns, rows or terminal commands."""
    return "\t".join(printable(cell) for cell in cells)
