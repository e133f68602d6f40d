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


def test_a_report_named_like_an_installed_model_leaves_its_card(
    tmp_path: Path, capsys, test_model_path: Path
) -> None:
    """``validate -o LIBRARY/NAME`` wrote NAME.json over that model's card: the model
    was lost. The desktop app's Save report refuses it too (tests/gui/test_validate_job)."""
    import shutil

    from xraydesk import paths

    library = paths.user_models_dir()
    library.mkdir(parents=True, exist_ok=True)
    for f in test_model_path.parent.glob(f"{test_model_path.stem}.*"):
        shutil.copy(f, library / f.name)
    card = library / test_model_path.name
    before = card.read_bytes()
    (tmp_path / "images").mkdir()
    out = card.with_suffix("")
    assert main(["validate", "no-such-model", str(tmp_path / "images"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {card}: it is the card of an installed model, not overwritten" in err
    assert card.read_bytes() == before
