"""Report PDF, image export and the --screenshot mode."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from tests.gui.conftest import open_and_wait
from xraydesk import paths
from xraydesk.gui.qt_images import rgb_array

pytestmark = pytest.mark.data


def pdf_page_count(data: bytes) -> int:
    """Page objects in a PDF ("/Type /Page", not the "/Type /Pages" tree node)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


def test_report_export_writes_a_one_page_pdf(qtbot, main_window, dicom_path, tmp_path, monkeypatch):
    assert not main_window.actions_by_id["export_report"].isEnabled()
    open_and_wait(qtbot, main_window, dicom_path)
    out = tmp_path / "reports" / "report.pdf"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "PDF (*.pdf)"))
    )
    main_window.actions_by_id["export_report"].trigger()  # File > Export report
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert pdf_page_count(data) == 1
    assert len(data) > 20_000  # the image is in it
    assert "Report saved" in main_window.statusBar().currentMessage()


def test_report_export_to_an_unwritable_place_shows_a_message(
    qtbot, main_window, png_path, tmp_path
):
    open_and_wait(qtbot, main_window, png_path, until="probabilities_shown")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main_window.export_report(blocker / "report.pdf") is None
    assert "report.pdf" in main_window.banner.text


def test_a_report_never_replaces_another_film_but_an_image_export_may(
    qtbot, main_window, png_path, tmp_path
):
    """The save dialog's "replace?" does not say the file is a film: a report saved as
    another folder's film replaced it. A heat-map export over an earlier one stays
    possible (re-exporting is what a user does)."""
    from tests.hostile_files import small_png

    open_and_wait(qtbot, main_window, png_path, until="probabilities_shown")
    other = tmp_path / "elsewhere" / "film.png"
    other.parent.mkdir()
    other.write_bytes(small_png())
    assert main_window.export_report(other) is None
    assert other.read_bytes() == small_png()
    assert str(other) in main_window.banner.text
    assert "an image file, not overwritten" in main_window.banner.text
    assert main_window.export_image(other) == other
    assert other.read_bytes() != small_png() and QImage(str(other)).width() > 48


def test_export_image_saves_the_view_with_the_overlay(qtbot, main_window, dicom_path, tmp_path):
    open_and_wait(qtbot, main_window, dicom_path)
    out = main_window.export_image(tmp_path / "view.png")
    saved = QImage(str(out))
    assert saved.width() == 1024 and saved.height() > 1024  # the legend strip below
    pixels = rgb_array(saved)[:1024]
    assert np.array_equal(pixels, rgb_array(main_window.view.composed_image()))
    # colour from the heat map, not only grey
    assert np.abs(pixels[..., 0].astype(int) - pixels[..., 2]).max() > 20


def test_screenshot_mode_saves_a_large_window_picture(
    dicom_path, test_model_path, tmp_path, capsys
):
    from xraydesk.cli import main as cli_main

    out = tmp_path / "shot.png"
    argv = ["--screenshot", str(out), str(dicom_path), "--model", str(test_model_path)]
    assert cli_main([*argv, "--device", "cpu"]) == 0
    image = QImage(str(out))
    assert image.width() >= 1280 and image.height() >= 800
    assert "screenshot saved" in capsys.readouterr().out


def test_screenshot_is_taken_once_the_analysis_has_ended(
    qapp, dicom_path, test_model_path, tmp_path
):
    """Grabbed at the heat map's arrival, the picture showed "Computing the heat map…"
    in the image's corner and the status bar: the analysis had not finished yet."""
    import argparse

    from xraydesk.gui.app import _screenshot
    from xraydesk.gui.main_window import MainWindow

    seen: dict[str, str] = {}

    class Recording(MainWindow):
        def grab(self, *args):
            seen["corner"] = self.view.busy_text
            seen["status"] = self.statusBar().currentMessage()
            return super().grab(*args)

    out = tmp_path / "shot.png"
    args = argparse.Namespace(
        screenshot=str(out),
        path=str(dicom_path),
        model=str(test_model_path),
        device="cpu",
        timeout=120.0,
    )
    assert _screenshot(qapp, args, Recording) == 0
    assert out.exists()
    assert seen["corner"] == ""
    assert "Computing" not in seen["status"]


def test_screenshot_mode_fails_clearly_on_a_bad_image(tmp_path, test_model_path, capsys):
    from xraydesk.gui.app import main

    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    out = tmp_path / "shot.png"
    code = main(["--screenshot", str(out), str(bad), "--model", str(test_model_path)])
    assert code == 1
    assert "x.png" in capsys.readouterr().err
    assert not out.exists()


def test_screenshot_mode_fails_clearly_without_a_model(tmp_path, monkeypatch, png_path, capsys):
    from xraydesk.gui.app import main

    monkeypatch.setattr(paths, "bundled_models_dir", lambda: tmp_path / "none")
    assert main(["--screenshot", str(tmp_path / "shot.png"), str(png_path)]) == 1
    assert "No model is installed" in capsys.readouterr().err


def test_screenshot_needs_a_path(capsys):
    from xraydesk.gui.app import main

    assert main(["--screenshot", "out.png"]) == 2
    assert "PATH" in capsys.readouterr().err
