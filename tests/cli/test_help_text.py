"""Every ``--help`` is plain text: `xraydesk pacs --help` printed a raw ESC character (and
a stray line break) because its text said "(\\x1b, \\n)" in a non-raw string, which a
terminal takes as the start of a control sequence. Found by a hostile-input sweep."""

from __future__ import annotations

import itertools
import re

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


def _help_text(command: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return capsys.readouterr().out


def test_commands_quoted_in_help_name_options_that_exist(capsys) -> None:
    """A `xraydesk ... --option` quoted in any help text is one that command accepts:
    `xraydesk monitor --help` sent users to `xraydesk validate --json`, which does not
    exist (the report is validate's OUT.json)."""
    quoted = [
        " ".join(span.split())
        for command in COMMANDS
        for span in re.findall(r"`(xraydesk [^`]*)`", _help_text(command, capsys))
    ]
    checked = 0
    for reference in quoted:
        words = reference.split()[1:]
        command = list(itertools.takewhile(lambda w: re.fullmatch("[a-z-]+", w), words))
        own_help = _help_text(command, capsys)
        for option in (w.split("=")[0] for w in words if w.startswith("--")):
            assert re.search(rf"{option}\b", own_help), f"{reference}: no {option}"
            checked += 1
    assert any("xraydesk validate" in q for q in quoted)
    assert checked >= 1  # `xraydesk models profile MODEL --remove`


def test_spark_help_names_every_output_column(capsys) -> None:
    """`xraydesk spark --help` lists the Parquet table's columns; it left out
    `indeterminate` (a result given no class), which the README and the table have."""
    from xraydesk.spark.worker_model import result_columns

    text = " ".join(_help_text(["spark"], capsys).split())
    listed = text.split("The output Parquet table has the columns ")[1].split(";")[0]
    words = set(re.findall(r"[\w<>]+", listed))
    missing = [c for c in result_columns(["<class>"]) if c not in words]
    assert not missing, f"spark --help leaves out {missing}: {listed}"
