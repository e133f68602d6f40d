"""The "Validate a model on your images" page: the engine of ``xraydesk validate``, in
the window. The figures it shows are checked against the JSON report it saves (formatted
here again from the JSON), and an adopted profile reaches the results panel."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from tests.gui.conftest import open_and_wait
from tests.gui.hostile_paths import link_loop
from tests.real_films import write_real_film
from xraydesk.classifier.cache import shared_cache
from xraydesk.gui.tools import install_tools, open_validate_page
from xraydesk.gui.validate_view import table_texts
from xraydesk.model.card import ModelCard
from xraydesk.model.site_profile import profile_path, remove_profile

SHOTS = Path("/tmp")


def _site(shared_data: Path, root: Path) -> Path:
    """Twelve real films under made-up labels: the gate passes them, so the random test
    model answers and a site profile can be fitted (pixel noise would be withheld)."""
    labels = ["normal", "pneumonia", "covid19"] * 4
    for i, label in enumerate(labels):
        write_real_film(shared_data, root / label / f"img{i:02d}.png", index=i)
    return root


def _fmt(value, interval) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} ({interval[0]:.3f}-{interval[1]:.3f})" if interval else f"{value:.3f}"


def test_validate_page_shows_the_reports_figures_and_adopts_a_profile(
    make_window,
    qtbot,
    tmp_path: Path,
    test_model_path: Path,
    png_path: Path,
    shared_data: Path,
) -> None:
    window = make_window()
    tools = install_tools(window)
    assert tools.validate_action in window.model_menu.actions()
    page = open_validate_page(window)
    assert page.model_combo.currentData() == str(test_model_path)
    page.folder_edit.setText(str(_site(shared_data, tmp_path / "site")))
    page.adopt.setChecked(True)
    page.indeterminate_spin.setValue(0.4)
    card = ModelCard.read(test_model_path)
    try:
        with qtbot.waitSignal(page.finished_run, timeout=180_000) as done:
            assert page.start()
        assert done.args[0] is not None, page.status_label.text()
        written = page.save(tmp_path / "report")
        assert [p.suffix for p in written] == [".json", ".pdf"]
        assert written[1].read_bytes().startswith(b"%PDF")
        report = json.loads(written[0].read_text())

        # the per-class table: n and the figures with their intervals, as the JSON says
        fig = report["figures"]
        per_class = fig["metrics"]["per_class"]
        expected = [
            (
                card.display_names[c],
                str(fig["n_per_class"][c]),
                _fmt(per_class[c]["sensitivity"], per_class[c]["sensitivity_ci95"]),
                _fmt(per_class[c]["specificity"], per_class[c]["specificity_ci95"]),
                _fmt(per_class[c].get("auc"), per_class[c].get("auc_ci95")),
            )
            for c in card.class_ids
        ]
        assert table_texts(page.class_table) == expected
        summary = page.summary_label.text()
        assert f"{fig['flagged']['share']:.1%} ({fig['flagged']['n']})" in summary
        assert f"{fig['withheld']['share']:.1%} ({fig['withheld']['n']})" in summary
        assert _fmt(fig["metrics"]["accuracy"], fig["metrics"]["accuracy_ci95"]) in summary
        for sentence in report["worse_than_card"]:
            assert sentence in page.worse_label.text()

        # the adopted profile: held-back figures without and with it, and the warning
        section = report["site_profile"]
        fitted = section["profile"]["fitted_on"]["n"]
        assert f"calibrated for this site on n = {fitted}" in page.profile_label.text()
        assert "optimistic" in page.profile_label.text()
        rows = table_texts(page.profile_table)
        held = [section["held_back_without_profile"], section["held_back_with_profile"]]
        assert [r[1] for r in rows] == [str(h["n_images"]) for h in held]
        assert [r[4] for r in rows] == [
            f"{h['withheld']['share']:.1%} ({h['withheld']['n']})" for h in held
        ]
        assert profile_path(card).exists()
        page.resize(900, 900)
        assert page.grab().save(str(SHOTS / "validate_page.png"))

        # the viewer's results panel says the model is calibrated for this site
        open_and_wait(qtbot, window, png_path, until="probabilities_shown")
        panel = window.results
        assert panel.profile_label.isVisibleTo(panel)
        assert f"calibrated for this site on n = {fitted}" in panel.profile_label.text()
        # the random test model's site temperature flattens it below 0.4: indeterminate,
        # and no class is highlighted
        assert "indeterminate" in [w.code for w in panel.warnings]
        assert not any(panel.bar(c).predicted for c in card.class_ids)
        assert panel.grab().save(str(SHOTS / "results_panel_profile.png"))
        # removed from the page: the next image is read with the card's calibration
        assert page.remove_button.isEnabled()
        page.remove_profile()
        assert not profile_path(card).exists() and not page.remove_button.isEnabled()
        open_and_wait(qtbot, window, png_path, until="probabilities_shown")
        assert not panel.profile_label.isVisibleTo(panel)
        assert "indeterminate" not in [w.code for w in panel.warnings]
    finally:  # the shared model cache outlives this test's data folder
        remove_profile(card)
        shared_cache().refresh_profiles()
        page.close()


def test_validate_page_says_what_is_missing(make_window, qtbot) -> None:
    window = make_window()
    page = open_validate_page(window)
    assert not page.start()
    assert "Choose the folder" in page.status_label.text()
    page.folder_edit.setText("/nonexistent/site")
    with qtbot.waitSignal(page.finished_run, timeout=60_000) as done:
        assert page.start()
    assert done.args[0] is None
    assert "/nonexistent/site" in page.status_label.text()
    assert "does not exist" in page.status_label.text()
    page.close()


def _hostile_picks(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """A path the folder picker may hand back, and the cause its message must name."""
    fifo = tmp_path / "fifo-folder"
    os.mkfifo(fifo)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    return {
        "fifo": (fifo, "not a folder"),
        "file": (notes, "not a folder"),
        "loop": (link_loop(tmp_path / "loop"), "loop of symbolic links"),
        "long": (tmp_path / ("a" * 300), "too long"),
    }


@pytest.mark.parametrize("case", ["fifo", "file", "loop", "long"])
def test_validate_folder_picker_names_a_hostile_pick_and_its_cause(
    make_window, qtbot, monkeypatch, tmp_path, caplog, case
) -> None:
    path, cause = _hostile_picks(tmp_path)[case]
    window = make_window()
    page = open_validate_page(window)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(path))
    page._browse_folder()
    assert page.folder_edit.text() == str(path)
    caplog.set_level(logging.ERROR)
    with qtbot.waitSignal(page.finished_run, timeout=60_000) as done:
        assert page.start()
    assert done.args[0] is None
    text = page.status_label.text()
    assert str(path) in text and cause in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback
    if case == "file":
        assert path.read_text() == "hello\n"
    page.close()


def test_validate_labels_picker_names_a_pipe(make_window, qtbot, monkeypatch, tmp_path) -> None:
    site = tmp_path / "site"
    (site / "normal").mkdir(parents=True)
    labels = tmp_path / "labels.csv"
    os.mkfifo(labels)  # read, it would block the worker for good
    window = make_window()
    page = open_validate_page(window)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(site))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(labels), ""))
    page._browse_folder()
    page._browse_csv()
    with qtbot.waitSignal(page.finished_run, timeout=60_000) as done:
        assert page.start()
    assert done.args[0] is None
    text = page.status_label.text()
    assert str(labels) in text and "named pipe" in text
    page.close()
