"""``xraydesk validate -o OUT`` where OUT.json or OUT.pdf is a folder (hostile-input
sweep): the whole folder was validated before the write failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from xraydesk.cli import main


@pytest.mark.parametrize("taken", ["out.json", "out.pdf"])
def test_a_folder_in_the_way_of_the_report_fails_before_validating(
    tmp_path: Path, capsys, taken: str
) -> None:
    (tmp_path / taken).mkdir()
    (tmp_path / "images").mkdir()
    # the model does not exist: the check on --out must come first, before anything runs
    args = ["validate", "no-such-model", str(tmp_path / "images"), "-o", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path / taken}: it is a folder, not a file; nothing was validated" in err


def test_no_pdf_ignores_a_folder_named_like_the_pdf(tmp_path: Path, capsys) -> None:
    (tmp_path / "out.pdf").mkdir()
    (tmp_path / "images").mkdir()
    args = ["validate", "no-such-model", str(tmp_path / "images"), "-o", str(tmp_path / "out")]
    assert main([*args, "--no-pdf"]) == 2
    assert "no model named 'no-such-model'" in capsys.readouterr().err
