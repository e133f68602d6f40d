"""Issue 18 through the GUI's front doors: the viewer and the batch panel fed a folder of
hostile files (``tests.hostile_files``). No uncaught exception (pytest-qt fails a test
on one raised in a Qt slot or virtual), one outcome per file, every number shown finite,
and the results database sound afterwards.
"""

from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from tests.gui.conftest import WAIT_MS, wait_for
from tests.hostile_files import ERROR, OK, SKIP, Hostile, write_hostile_folder
from xraydesk.batch.database import default_db_path
from xraydesk.gui.batch_panel import BatchPanel
from xraydesk.model.card import ClassInfo, ModelCard
from xraydesk.model.network import build_network
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.saving import save_model

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)|\b(?:nan|inf|infinity)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Hostile]]:
    folder = tmp_path_factory.mktemp("hostile-gui") / "in"
    return folder, write_hostile_folder(folder)


def numbers_in(text: str) -> list[float]:
    """Every number in a text as shown (``nan%`` and ``inf`` included, as floats)."""
    return [float(m) for m in NUMBER.findall(text)]


def open_and_settle(qtbot, window, path: Path) -> list[str]:
    """Open through the window's one entry point; wait until the request has nothing more
    to deliver. Returns the error messages the window showed."""
    errors: list[str] = []
    window.error_shown.connect(errors.append)
    try:
        with qtbot.waitSignal(window.analysis_finished, timeout=WAIT_MS):
            assert window.open_path(path)
    finally:
        window.error_shown.disconnect(errors.append)
    return errors


def assert_screen_finite(window) -> None:
    """What the viewer shows holds no NaN or infinity: image, window, probabilities."""
    xray = window.current_xray
    if xray is not None:
        assert np.isfinite(xray.pixels).all(), xray.path
        assert math.isfinite(xray.window.center) and math.isfinite(xray.window.width)
    window_on_screen = window.state.window
    if window_on_screen is not None:
        assert math.isfinite(window_on_screen.center) and math.isfinite(window_on_screen.width)
    for label in (window.window_label, window.results.details_label):
        assert all(math.isfinite(v) for v in numbers_in(label.text())), label.text()
    shown = window.results.shown_probabilities()
    assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in shown.values()), shown


# ============================================================================ viewer
def test_viewer_opens_every_hostile_file_with_an_outcome(qtbot, main_window, hostile_folder):
    folder, hostile = hostile_folder
    for name, case in sorted(hostile.items()):
        before = main_window.current_xray, main_window.results.shown_probabilities()
        errors = open_and_settle(qtbot, main_window, folder / name)
        assert_screen_finite(main_window)
        if case.expect == OK:
            assert not errors, (name, case.why, errors)
            assert main_window.current_xray is not None, (name, case.why)
            shown = main_window.results.shown_probabilities()
            assert sum(shown.values()) == pytest.approx(1.0, abs=1e-4), (name, shown)
        else:  # ERROR, and SKIP too: the viewer was asked for this file by name
            assert len(errors) == 1 and errors[0].startswith("Cannot open"), (name, errors)
            assert "unexpected" not in errors[0].lower(), (name, errors)
            # issue 19 #6: the image on screen stays, with its own probabilities
            assert main_window.current_xray is before[0], (name, case.why)
            assert main_window.results.shown_probabilities() == before[1], name


def test_a_replaced_window_is_a_note_the_user_sees(qtbot, main_window, hostile_folder):
    """Issue 18 #1: a bad window alone gives a fallback window with a note on screen."""
    folder, hostile = hostile_folder
    for name in ("window-center-nan.dcm", "window-width-inf.dcm", "voi-lut-empty.dcm"):
        assert hostile[name].expect == OK
        assert not open_and_settle(qtbot, main_window, folder / name)
        notes = main_window.current_xray.notes
        assert notes, f"{name}: the loader gave no note"
        for note in notes:  # in the banner, which stays until dismissed
            assert note in main_window.banner.text, (name, main_window.banner.text)
        assert_screen_finite(main_window)


def test_a_failed_open_keeps_the_image_and_its_own_result(
    qtbot, main_window, hostile_folder, png_path
):
    """Issue 19 #6 (was issue 18's 'leaves no image'): the image already on screen stays,
    with the probabilities and heat map computed for it, and nothing of the failed file."""
    folder, _ = hostile_folder
    assert not open_and_settle(qtbot, main_window, png_path)
    xray, presets = main_window.current_xray, main_window.view.presets
    shown = main_window.results.shown_probabilities()
    assert xray is not None and sum(shown.values()) == pytest.approx(1.0, abs=1e-4)
    errors = open_and_settle(qtbot, main_window, folder / "slope-nan.dcm")
    assert errors and "slope-nan.dcm" in errors[0] and png_path.name in errors[0]
    assert main_window.current_xray is xray and main_window.view.presets is presets
    assert main_window.view.xray is xray and png_path.name in main_window.windowTitle()
    assert main_window.results.shown_probabilities() == shown
    assert main_window.current_explanation is not None
    assert main_window.view.has_heat_layer or main_window.current_explanation.empty
    assert_screen_finite(main_window)
    # with nothing on screen before, nothing is shown: test_viewer_open's bad-file test


def test_a_failed_open_before_the_result_classifies_the_kept_image_again(
    qtbot, main_window, hostile_folder, png_path
):
    """The previous image's result had not arrived when the bad file was opened: it is
    computed again for that image, never left half-done or taken from another file."""
    folder, _ = hostile_folder
    wait_for(qtbot, main_window, "image_shown", lambda: main_window.open_path(png_path))
    xray = main_window.current_xray
    errors: list[str] = []
    main_window.error_shown.connect(errors.append)
    main_window.open_path(folder / "slope-nan.dcm")  # supersedes the png's request
    shown = main_window.results.shown_probabilities
    qtbot.waitUntil(
        lambda: bool(errors and shown()) and not main_window.pipeline.busy, timeout=WAIT_MS
    )
    assert main_window.current_xray is xray and main_window.view.xray is xray
    assert sum(shown().values()) == pytest.approx(1, abs=1e-4)
    assert main_window.current_prediction is not None


@pytest.fixture
def nan_model(tmp_path: Path) -> Path:
    """A real model whose weights hold NaN (a corrupt training run): its output is NaN."""
    preprocessing = Preprocessing(size=64)
    network = build_network("resnet50", 3, preprocessing.channels)
    network.eval()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.fill_(float("nan"))
    card = ModelCard(
        name="nan-model",
        version="0.0-test",
        classes=[ClassInfo(c, c.title()) for c in ("normal", "pneumonia", "covid19")],
        preprocessing=preprocessing,
        weights_file="",
        weights_sha256="",
    )
    return save_model(network, card, tmp_path / "nan-model")


def test_a_non_finite_model_output_is_the_classifiers_error(
    qtbot, make_window, nan_model, png_path
):
    window = make_window(model=nan_model)
    errors = open_and_settle(qtbot, window, png_path)
    assert window.current_xray is not None  # the image itself is fine and stays
    assert len(errors) == 1, errors
    assert "not a number" in errors[0] and "unexpected" not in errors[0].lower(), errors
    assert window.current_prediction is None
    assert window.results.shown_probabilities() == {}
    assert_screen_finite(window)


# ============================================================================ batch panel
@pytest.fixture
def batch_panel(qtbot, test_model_path):
    panel = BatchPanel()
    panel.set_model(test_model_path, "cpu")
    qtbot.addWidget(panel)
    panel.show()
    yield panel
    panel.shutdown()


@pytest.fixture
def batch_run(qtbot, batch_panel, hostile_folder):
    folder, hostile = hostile_folder
    with qtbot.waitSignal(batch_panel.run_finished, timeout=WAIT_MS) as blocker:
        assert batch_panel.start(folder)
    return blocker.args[0], batch_panel, hostile


def test_batch_panel_hostile_run_ends_with_a_summary(batch_run):
    summary, panel, _ = batch_run
    assert summary is not None and summary.status == "completed", summary
    assert not panel.message_label.isVisible(), panel.message_label.text()


def test_batch_panel_hostile_one_row_per_file(batch_run):
    summary, panel, hostile = batch_run
    rows = {row.path.name: row for row in panel.results_model.rows}
    assert len(rows) == len(panel.results_model.rows)  # no file twice
    expected = {name for name, case in hostile.items() if case.expect in (OK, ERROR)}
    assert set(rows) == expected
    for name, row in rows.items():
        case = hostile[name]
        if case.expect == ERROR:
            assert row.error and row.prediction is None, (name, case.why, row)
        else:
            assert row.error is None, (name, case.why, row.error)
    skipped = {name for name, case in hostile.items() if case.expect == SKIP}
    assert summary.not_images == len(skipped)


def test_batch_panel_hostile_every_number_shown_finite(batch_run):
    _, panel, _ = batch_run
    model = panel.proxy
    assert model.rowCount() == len(panel.results_model.rows)
    for r in range(model.rowCount()):
        for c in [2, *panel.results_model.class_columns]:  # probability and per-class columns
            text = model.data(model.index(r, c), Qt.ItemDataRole.DisplayRole)
            assert all(math.isfinite(v) for v in numbers_in(text or "")), (r, c, text)
    for row in panel.results_model.rows:
        if row.ok:
            values = list((row.probabilities or {}).values())
            assert all(math.isfinite(p) for p in values), row
            assert sum(values) == pytest.approx(1.0, abs=1e-4), row
    assert all(math.isfinite(v) for v in numbers_in(panel.progress_label.text()))


def test_batch_panel_hostile_store_is_sound(batch_run):
    summary, panel, _ = batch_run
    with sqlite3.connect(default_db_path()) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = db.execute("SELECT COUNT(*) FROM results WHERE run_id = ?", (summary.run_id,))
        assert stored.fetchone()[0] == len(panel.results_model.rows)
