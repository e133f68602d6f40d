"""The validation page's Save (``validate_job.save_report``) given a hostile BASE: both
targets are checked before either is written, so a named pipe or a folder named
BASE.pdf, or an image of the validation named BASE.json, is refused with its name and
cause, and nothing is half-saved."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.hostile_files import small_png
from xraydesk import paths
from xraydesk.errors import XRayDeskError
from xraydesk.gui.validate_job import ValidationOutcome, save_report


@pytest.fixture
def outcome(tmp_path: Path) -> ValidationOutcome:
    film = tmp_path / "films" / "a.json"  # an image whose name is the report's
    film.parent.mkdir()
    film.write_bytes(small_png())
    return ValidationOutcome({"images": 1}, {"a.png": film})


@pytest.mark.parametrize("kind", ["pipe", "folder"])
def test_a_pdf_target_that_is_no_file_is_refused_before_the_json(outcome, tmp_path, kind):
    base = tmp_path / "report"
    pdf = tmp_path / "report.pdf"
    os.mkfifo(pdf) if kind == "pipe" else pdf.mkdir()
    with pytest.raises(XRayDeskError) as raised:
        save_report(outcome, base)
    message = str(raised.value)
    assert message.startswith(f"{pdf}: cannot write the PDF report there"), message
    assert ("named pipe" if kind == "pipe" else "folder") in message
    assert not (tmp_path / "report.json").exists()
    assert pdf.is_fifo() if kind == "pipe" else pdf.is_dir()


def test_an_image_validated_is_never_overwritten(outcome):
    film = outcome.image_paths["a.png"]
    with pytest.raises(XRayDeskError, match="an image validated, not overwritten"):
        save_report(outcome, film.with_suffix(""), pdf=False)
    assert film.read_bytes() == small_png()


def test_a_report_never_replaces_a_film_outside_the_validation(outcome, tmp_path):
    film = tmp_path / "elsewhere" / "scan.png"
    film.parent.mkdir()
    film.write_bytes(small_png(seed=3))
    base = film.with_name("scan")  # BASE.json and BASE.pdf: here, the PDF as the film
    film.rename(film.with_suffix(".pdf"))
    disguised = film.with_suffix(".pdf")  # an image whatever its name says
    with pytest.raises(XRayDeskError, match="an image file, not overwritten"):
        save_report(outcome, base)
    assert disguised.read_bytes() == small_png(seed=3)
    assert not base.with_name("scan.json").exists()


def _install(model_card: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in model_card.parent.glob(f"{model_card.stem}.*"):
        shutil.copy(f, folder / f.name)
    return folder / model_card.name


@pytest.mark.parametrize("where", ["bundled", "user"])
def test_a_model_card_is_never_overwritten_by_the_report(
    outcome, test_model_path, tmp_path, monkeypatch, where
):
    if where == "bundled":
        bundled = tmp_path / "bundled"
        monkeypatch.setattr(paths, "bundled_models_dir", lambda: bundled)
        card = _install(test_model_path, bundled)
    else:
        card = _install(test_model_path, paths.user_models_dir())
    before = card.read_bytes()
    with pytest.raises(XRayDeskError) as raised:
        save_report(outcome, card.with_suffix(""))
    message = str(raised.value)
    assert message.startswith(f"{card}: cannot write the JSON report there"), message
    assert "the card of an installed model, not overwritten" in message
    assert card.read_bytes() == before
    assert not card.with_suffix(".pdf").exists()
