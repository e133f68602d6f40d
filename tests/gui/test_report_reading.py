"""Issue 29 #3: the PDF is a radiology report (identifiers, both images, colour scale,
answer, explained class, the card's limits, reader and date), saved to a reports folder;
the exported PNG carries a legend. The PDF's text is read back with pdftotext and its
page rendered with pdftoppm (poppler-utils)."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from tests.dicom_factory import make_dicom
from tests.gui.conftest import open_and_wait
from tests.gui.heatmap_models import make_head_model, synthetic_film
from tests.real_films import write_real_film

pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdftotext, pdftoppm) not installed",
)

EXTRA = {
    "PatientAge": "068Y",
    "PatientSex": "F",
    "AccessionNumber": "ACC-4242",
    "StudyDate": "20240315",
    "ViewPosition": "PA",
}


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(unicodedata.normalize("NFKC", out.stdout.decode()).split())  # no "ﬁ"


def pdf_page_png(path: Path, out_stem: Path) -> Path:
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", str(path), str(out_stem)], check=True
    )
    return out_stem.with_suffix(".png")


@pytest.fixture
def film(tmp_path: Path) -> Path:
    return synthetic_film(tmp_path / "film.dcm", EXTRA)


@pytest.fixture
def real_film(shared_data: Path, tmp_path: Path) -> Path:
    """A real chest film (tests/real_films.py) as a 12-bit DICOM with the same header:
    it passes the input gate, so the report gives an answer and may carry its map."""
    png = write_real_film(shared_data, tmp_path / "real.png")
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.uint16) * 16
    return make_dicom(tmp_path / "real.dcm", pixels, bits_stored=12, extra=EXTRA)


@pytest.fixture(scope="module")
def limited_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model whose head weights are all positive, so every class has a heat map
    (the explained class can differ from the answer), with limitations on its card."""
    return make_head_model(
        tmp_path_factory.mktemp("limited"),
        "limited",
        limitations=["Trained on one hospital's films; unknown elsewhere."],
    )


def _other_class(window) -> str:
    prediction = window.analysis.prediction
    return next(c for c in prediction.probabilities if c != prediction.predicted)


def _explain_other(qtbot, window) -> str:
    """Ask for the map of a class other than the answer; returns its id once computed."""
    other = _other_class(window)
    window.explain_class(other)
    qtbot.waitUntil(
        lambda: (
            window.analysis.explanation is not None
            and window.analysis.explanation.cam.class_id == other
        ),
        timeout=120_000,
    )
    return other


@pytest.mark.data
def test_report_is_a_radiology_report(qtbot, make_window, film, real_film, tmp_path, limited_model):
    window = make_window(model=limited_model)
    open_and_wait(qtbot, window, film)
    _explain_other(qtbot, window)
    explanation = window.analysis.explanation
    assert not explanation.empty and window.state.overlay_visible
    # the synthetic film fails the input gate: the app withholds the answer, so does the
    # PDF, and the heat map (it names a class) is held back with it, on screen and on paper,
    # also after "Show anyway" (the numbers are shown, no class is given)
    assert window.results.probabilities_hidden and not window.view.has_heat_layer
    for opened in (False, True):
        if opened:
            window.results.reveal_probabilities()
        assert not window.view.has_heat_layer
        withheld = pdf_text(window.export_report(tmp_path / "withheld.pdf"))
        assert "Answer: Withheld (indeterminate)" in withheld and "input check" in withheld
        assert "Not given: the result is withheld" in withheld
        assert "supports" not in withheld and "would name the class" in withheld
    # a real film passes the check: the answer is given, and the map of another class
    open_and_wait(qtbot, window, real_film)
    prediction = window.analysis.prediction
    assert window.analysis.checked.verdict.prediction is not None  # a class is given
    other = _explain_other(qtbot, window)
    assert window.view.has_heat_layer
    content = window.report_content()
    assert content.plain_image is not None and not content.plain_image.isNull()
    out = window.export_report(tmp_path / "report.pdf")
    assert out is not None
    text = pdf_text(out)
    names = prediction.display_names
    answer = names[prediction.predicted]
    assert "Doe, Jane" in text and "P-0001" in text and "ACC-4242" in text
    assert "68 years" in text and "Female" in text and "2024-03-15" in text and "PA" in text
    assert f"Answer: {answer} {prediction.confidence * 100:.1f}%" in text
    assert f"NOT the answer ({answer})" in text and f"heat map explains {names[other]}" in text
    assert f"support for {names[other]}" in text  # the colour scale's caption
    assert "Trained on one hospital's films" in text
    assert "Reader:" in text and "Date:" in text and "Signature:" in text
    png = pdf_page_png(out, tmp_path / "report-differs")
    assert QImage(str(png)).height() > 0


def test_identifiers_setting_leaves_them_out(qtbot, make_window, film, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film)
    action = window.actions_by_id["report_identifiers"]
    assert action.isChecked()
    action.setChecked(False)
    assert window.settings.report_identifiers is False
    out = window.export_report(tmp_path / "anon.pdf")
    text = pdf_text(out)
    assert "Doe" not in text and "P-0001" not in text and "ACC-4242" not in text
    assert "identifiers left out" in text and "68 years" in text
    assert QImage(str(pdf_page_png(out, tmp_path / "report-anon"))).height() > 0


def test_report_goes_to_a_remembered_reports_folder(
    qtbot, make_window, film, tmp_path, monkeypatch
):
    window = make_window()
    open_and_wait(qtbot, window, film)
    offered: list[str] = []
    chosen = tmp_path / "my reports" / "film-report.pdf"

    def fake_save(_parent, _title, default, _filter):
        offered.append(default)
        return str(chosen), "PDF (*.pdf)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    assert window.export_report() == chosen
    assert Path(offered[0]).parent.name == "XRayDesk reports"
    assert Path(offered[0]).parent != film.parent  # not beside the image
    assert window.settings.report_folder == str(chosen.parent)
    window.export_report()
    assert Path(offered[1]).parent == chosen.parent  # remembered


def test_exported_png_has_a_legend(qtbot, make_window, film, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, film)
    shown = window.view.composed_image()
    out = window.export_image(tmp_path / "view.png")
    saved = QImage(str(out))
    assert saved.width() == shown.width() and saved.height() > shown.height() + 40
    assert saved.copy(0, 0, shown.width(), shown.height()).convertToFormat(shown.format()) == shown
    strip = saved.copy(0, shown.height(), saved.width(), saved.height() - shown.height())
    colours = {
        strip.pixelColor(x, y).name()
        for x in range(0, strip.width(), 3)
        for y in range(0, strip.height(), 3)
    }
    assert len(colours) > 20  # text and the colour scale, not a blank band
