"""Every ``--help`` is plain text: `xraydesk pacs --help` printed a raw ESC character (and
a stray line break) because its text said "(\\x1b, \\n)" in a non-raw string, which a
terminal takes as the start of a control sequence. Found by a hostile-input sweep."""

from __future__ import annotations

import pytest

from xraydesk.cli import main

COMMANDS = [
    [],
    ["classify"],
    ["listen"],
    ["models"],
    ["monitor"],
    ["pacs"],
    ["pacs", "find"],
    ["pacs", "send"],
    ["self-test"],
    ["spark"],
    ["train"],
    ["validate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "xraydesk")
def test_help_has_no_control_characters(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.strip()
    bad = sorted(
        {f"U+{ord(ch):04X}" for ch in text if (ord(ch) < 32 and ch != "\n") or ch == "\x7f"}
    )
    assert not bad, bad
