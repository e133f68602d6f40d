"""Issue 27 items 1 and 5: an indeterminate result reads as such in the results panel
(probabilities one click away), and nothing on screen or in the report names a class the
app holds back: the heat map and its label are hidden with the probabilities (input gate,
indeterminate) and stay hidden, on screen and in the exported PNG and PDF, after the
numbers are opened ("Show anyway", the one click), since the result still names no
class; a Normal answer gets no map by default (offered, labelled as what supports
Normal), and the exported images carry their legend."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel

from tests.gui.conftest import open_and_wait
from tests.gui.heatmap_models import make_leaning_model, synthetic_film
from xraydesk.classifier.cache import shared_cache
from xraydesk.gui.qt_images import rgb_array
from xraydesk.gui.results_answer import INDETERMINATE_TITLE, SHOW_PROBABILITIES
from xraydesk.model.card import ModelCard
from xraydesk.model.site_profile import SiteProfile, save_profile
from xraydesk.viewer.heat_policy import HOLD_TEXT, HeatHold

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed"
)


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(unicodedata.normalize("NFKC", out.stdout.decode()).split())


@pytest.fixture(scope="module")
def normal_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_leaning_model(tmp_path_factory.mktemp("normal"), "normal", "normal-lean")


@pytest.fixture(scope="module")
def covid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_leaning_model(tmp_path_factory.mktemp("covid"), "covid19", "covid-lean")


@pytest.fixture
def unsure_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model leaning mildly to COVID-19 with a site profile that names no class below
    99 %: every answer is indeterminate (the verdict's rule, as a card rule would be)."""
    path = make_leaning_model(tmp_path_factory.mktemp("unsure"), "covid19", "unsure", 1.0)
    card = ModelCard.read(path)
    thresholds = {cid: 0.5 for cid in card.class_ids}
    profile = SiteProfile(card.name, card.weights_sha256, 1.0, 0.99, thresholds, 0.9, {"n": 9})
    save_profile(profile, card)
    shared_cache().refresh_profiles()
    return path


@pytest.fixture
def gate_failing_film(tmp_path: Path) -> Path:
    return synthetic_film(tmp_path / "film.dcm")


def opened(qtbot, make_window, model: Path, image: Path):
    """A main window on ``model`` with ``image`` open and its heat map computed, and
    its results panel."""
    window = make_window(model=model)
    open_and_wait(qtbot, window, image)
    return window, window.results


def visible_texts(window) -> list[str]:
    """Every word on screen that could name a class: labels, buttons, combos' current
    items, the image's corner caption, the title and the status bar."""
    texts = [window.view.heat_caption, window.windowTitle(), window.statusBar().currentMessage()]
    texts += [w.text() for w in window.findChildren(QLabel) if w.isVisible()]
    texts += [w.text() for w in window.findChildren(QAbstractButton) if w.isVisible()]
    texts += [w.currentText() for w in window.findChildren(QComboBox) if w.isVisible()]
    return texts


def assert_nothing_names(window, class_name: str) -> None:
    found = [t for t in visible_texts(window) if class_name in t]
    assert not found, f"{class_name!r} is on screen while the answer is held back: {found}"


@pytest.mark.data
@needs_poppler
def test_indeterminate_reads_as_such_and_hides_the_heat_map(
    qtbot, make_window, unsure_model, png_path, tmp_path
):
    window, panel = opened(qtbot, make_window, unsure_model, png_path)
    checked = window.analysis.checked
    assert checked is not None and checked.verdict.prediction is None  # the verdict's rule
    top = panel.prediction.display_names[panel.prediction.predicted]
    assert top == "COVID-19"
    # the headline with the rule's reason; the numbers one click away, collapsed
    headline = panel.verdict_label.text()
    assert panel.verdict_label.isVisible() and INDETERMINATE_TITLE in headline
    assert "below this site" in headline and "99%" in headline
    assert panel.probabilities_hidden and panel.indeterminate_reason
    assert not any(panel.bar(c).isVisible() for c in panel.shown_probabilities())
    toggle = panel.probabilities_toggle
    assert toggle.isVisible() and toggle.text() == SHOW_PROBABILITIES
    assert not panel.show_anyway_button.isVisible()
    # no heat map, no label, no "Explains" choice: nothing gives the answer away
    explanation = window.analysis.explanation
    assert explanation is not None and not explanation.empty  # computed, held back
    assert not window.view.has_heat_layer and window.view.heat_caption == ""
    assert panel.cam_label.text() == HOLD_TEXT[HeatHold.ANSWER_HIDDEN]
    assert panel.class_combo.currentIndex() == -1 and not panel.class_combo.isEnabled()
    assert_nothing_names(window, top)
    # the report says indeterminate, with the reason, and names no class either
    text = pdf_text(window.export_report(tmp_path / "indeterminate.pdf"))
    assert "Answer: Withheld (indeterminate)" in text and "below this site" in text
    assert top not in text and "supports" not in text and "Not for diagnosis" in text
    # one click: the probabilities, no class highlighted, and still no heat map: the
    # result names no class, and a map shows what supports one
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert not panel.probabilities_hidden
    assert all(panel.bar(c).isVisible() for c in panel.shown_probabilities())
    assert not any(panel.bar(c).predicted for c in panel.shown_probabilities())
    assert not window.view.has_heat_layer and window.view.heat_caption == ""
    assert panel.cam_label.text() == HOLD_TEXT[HeatHold.NO_CLASS]
    assert panel.class_combo.currentIndex() == -1 and not panel.class_combo.isEnabled()
    # a report still gives no class and so carries no map, even with the bars open
    text = pdf_text(window.export_report(tmp_path / "opened.pdf"))
    assert "Withheld (indeterminate)" in text and "supports" not in text
    # and collapsed again: all of it goes back
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert panel.probabilities_hidden and not window.view.has_heat_layer
    assert_nothing_names(window, top)


def test_withheld_by_the_gate_hides_the_heat_map_and_its_label(
    qtbot, make_window, covid_model, gate_failing_film
):
    window, panel = opened(qtbot, make_window, covid_model, gate_failing_film)
    assert panel.withheld_by_gate and panel.probabilities_hidden
    assert panel.show_anyway_button.isVisible() and not panel.verdict_label.isVisible()
    explanation = window.analysis.explanation
    assert explanation is not None and not explanation.empty
    assert not window.view.has_heat_layer and window.view.heat_caption == ""
    assert panel.class_combo.currentIndex() == -1
    assert_nothing_names(window, "COVID-19")
    # the same image exported: no map, the legend says so
    strip_free = window.view.composed_image(heat_map=False)
    assert window.view.composed_image() == strip_free
    qtbot.mouseClick(panel.show_anyway_button, Qt.MouseButton.LeftButton)  # "show anyway"
    assert not panel.probabilities_hidden and panel.gate_failed  # opened, still no class
    assert not window.view.has_heat_layer and window.view.heat_caption == ""
    assert panel.cam_label.text() == HOLD_TEXT[HeatHold.NO_CLASS]
    assert panel.class_combo.currentIndex() == -1


@pytest.mark.data
@needs_poppler
def test_a_normal_answer_offers_its_heat_map_instead_of_showing_it(
    qtbot, make_window, normal_model, png_path, tmp_path
):
    window, panel = opened(qtbot, make_window, normal_model, png_path)
    assert window.analysis.prediction.predicted == "normal" and not panel.probabilities_hidden
    explanation = window.analysis.explanation
    assert explanation is not None and not explanation.empty
    assert not window.view.has_heat_layer and window.view.heat_caption == ""
    assert panel.cam_label.text() == HOLD_TEXT[HeatHold.NORMAL]
    button = panel.heat_request_button
    assert button.isVisible() and button.text() == "Show heat map: what supports “Normal”"
    text = pdf_text(window.export_report(tmp_path / "default.pdf"))
    assert "Answer: Normal" in text and "not shown by default for a Normal answer" in text
    assert "supports" not in text
    # on request: shown, and labelled as what supports "Normal"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.view.has_heat_layer and not button.isVisible()
    assert window.view.heat_caption == "Heat map: what supports Normal"
    assert panel.cam_label.text().startswith("Shows what supports “Normal”")
    text = pdf_text(window.export_report(tmp_path / "requested.pdf"))
    assert "The heat map shows what supports Normal." in text
    assert "support for Normal" in text  # the colour scale's caption
    assert "Model: normal-lean 0.0-test" in text and "Not for diagnosis" in text
    # the exported PNG: the view as shown, then the legend with the colour scale
    shown = window.view.composed_image()
    saved = QImage(str(window.export_image(tmp_path / "view.png")))
    assert saved.width() == shown.width() and saved.height() > shown.height()
    strip = rgb_array(saved)[shown.height() :]
    assert_has_legend(strip)
    # another image: the default holds again
    open_and_wait(qtbot, window, png_path)
    assert not window.view.has_heat_layer and panel.heat_request_button.isVisible()


def assert_has_legend(strip: np.ndarray) -> None:
    """The legend strip holds the viridis colour scale and the orange notice line."""
    from xraydesk.explain.overlay import colormap_lut

    lut = colormap_lut().astype(int)
    pixels = strip.reshape(-1, 3).astype(int)
    for k in (0, 128, 255):  # the scale's low, middle and high colours are there
        assert (np.abs(pixels - lut[k]).max(axis=1) <= 6).any(), f"colour {k} missing"
    notice = np.abs(pixels - np.array([255, 190, 90])).max(axis=1) <= 10
    assert notice.sum() > 20  # "Not for diagnosis", drawn in its own colour


def scale_colours(pixels: np.ndarray) -> int:
    """How many of the colour scale's low, middle and high colours are in ``pixels``."""
    from xraydesk.explain.overlay import colormap_lut

    lut, flat = colormap_lut().astype(int), pixels.reshape(-1, 3).astype(int)
    return sum(bool((np.abs(flat - lut[k]).max(axis=1) <= 6).any()) for k in (0, 128, 255))


@pytest.mark.data
@needs_poppler
@pytest.mark.parametrize("case", ["indeterminate", "gate"])
def test_exports_carry_no_heat_map_after_the_numbers_are_opened(
    qtbot, make_window, request, png_path, case, tmp_path
):
    """Opened numbers name no class: the PNG and the PDF carry no map, even when a map
    is forced onto the screen (the exports ask the rule, not the screen)."""
    if case == "indeterminate":
        model, film = request.getfixturevalue("unsure_model"), png_path
    else:
        model, film = request.getfixturevalue("covid_model"), synthetic_film(tmp_path / "f.dcm")
    window, panel = opened(qtbot, make_window, model, film)
    assert panel.names_no_class and panel.probabilities_hidden
    if case == "indeterminate":
        panel.set_probabilities_expanded(True)
    else:
        qtbot.mouseClick(panel.show_anyway_button, Qt.MouseButton.LeftButton)
    assert not panel.probabilities_hidden  # the numbers are open
    explanation = window.analysis.explanation
    assert explanation is not None and not explanation.empty
    window.view.set_heat_layer(explanation.layer, "forced")  # a screen that went wrong
    plain = rgb_array(window.view.composed_image(heat_map=False))
    saved = rgb_array(QImage(str(window.export_image(tmp_path / "view.png"))))
    assert np.array_equal(saved[: plain.shape[0]], plain)  # the film, no map over it
    strip = saved[plain.shape[0] :]
    assert scale_colours(strip) == 0  # no colour scale: there is no map to read
    text = pdf_text(window.export_report(tmp_path / "report.pdf"))
    assert "Withheld (indeterminate)" in text and "supports" not in text
    assert "not shown, since it would name the class" in text and "Not for diagnosis" in text


@pytest.mark.data
def test_h_and_the_offer_are_one_action(qtbot, make_window, normal_model, png_path):
    """H, View > Show heat map, the toolbar button, the panel's check box and the
    "Show heat map: what supports Normal" offer are one QAction: H shows the Normal map
    the button offers, and the button triggers that action."""
    window, panel = opened(qtbot, make_window, normal_model, png_path)
    action = window.actions_by_id["toggle_overlay"]
    assert [k.toString() for k in action.shortcuts()] == ["H"]
    view_menu = next(m.menu() for m in window.menuBar().actions() if m.text() == "&View")
    assert action in view_menu.actions() and action in window.toolbar.actions()
    assert not window.view.has_heat_layer and panel.heat_request_button.isVisible()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window.view, Qt.Key.Key_H)  # the key itself, through the shortcut map
    assert window.view.has_heat_layer and not panel.heat_request_button.isVisible()
    assert window.view.heat_caption == "Heat map: what supports Normal"
    assert action.isChecked() and panel.overlay_check.isChecked()
    qtbot.keyClick(window.view, Qt.Key.Key_H)  # shown: H hides it, as it always did
    assert not window.state.overlay_visible and not action.isChecked()
    assert not panel.overlay_check.isChecked()
    qtbot.keyClick(window.view, Qt.Key.Key_H)
    assert window.state.overlay_visible and window.view.has_heat_layer
    # another Normal film: its offer again, and the offer's button is the same action
    open_and_wait(qtbot, window, png_path)
    assert not window.view.has_heat_layer and panel.heat_request_button.isVisible()
    with qtbot.waitSignal(action.triggered, timeout=2000):
        qtbot.mouseClick(panel.heat_request_button, Qt.MouseButton.LeftButton)
    assert window.view.has_heat_layer and action.isChecked()
