"""Issue 14 in the viewer: the banner names the reason, the probabilities wait behind
"show anyway" when the input gate fails, a rotated or inverted film is put right with
one click (in memory), and the PDF report carries the warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.gui.conftest import open_and_wait, wait_for
from tests.paths import REPO_ROOT
from tests.xrays import split_test_paths
from xraydesk.files import sha256_file
from xraydesk.imaging.loader import load_xray
from xraydesk.trust.codes import INVERTED, NOT_CHEST, ROTATED, warning_label

CHEST = REPO_ROOT / "models" / "chest-3class.json"


def _png(path: Path, unit: np.ndarray) -> Path:
    Image.fromarray(np.clip(unit * 255 + 0.5, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def films(tmp_path: Path, shared_data: Path) -> dict[str, Path]:
    unit = load_xray(shared_data / split_test_paths(1)[0]).render()
    return {
        "upright": _png(tmp_path / "upright.png", unit),
        "turned": _png(tmp_path / "turned.png", np.rot90(unit)),
        "negative": _png(tmp_path / "negative.png", 1.0 - unit),
        "noise": _png(tmp_path / "noise.png", np.random.default_rng(0).random((256, 256))),
    }


def test_a_good_film_shows_its_probabilities_without_a_banner(qtbot, make_window, films):
    window = make_window(model=CHEST)
    open_and_wait(qtbot, window, films["upright"], until="probabilities_shown")
    panel = window.results
    assert panel.warnings == [] and not panel.warnings_label.isVisible()
    assert not panel.probabilities_hidden and not panel.show_anyway_button.isVisible()
    assert all(panel.bar(c).isVisible() for c in window.analysis.prediction.probabilities)


def test_noise_hides_the_numbers_until_show_anyway(qtbot, make_window, films, tmp_path):
    window = make_window(model=CHEST)
    open_and_wait(qtbot, window, films["noise"], until="probabilities_shown")
    panel = window.results
    assert NOT_CHEST in [w.code for w in panel.warnings]
    assert panel.warnings_label.isVisible() and "not a radiograph" in panel.warnings_label.text()
    ids = list(window.analysis.prediction.probabilities)
    assert panel.probabilities_hidden and not any(panel.bar(c).isVisible() for c in ids)
    assert panel.show_anyway_button.isVisible() and not panel.correct_button.isVisible()
    qtbot.mouseClick(panel.show_anyway_button, Qt_left())
    assert all(panel.bar(c).isVisible() and not panel.bar(c).isEnabled() for c in ids)
    assert panel.warnings_label.isVisible()  # the reason stays above the greyed numbers
    content = window.report_content()
    assert any("not a radiograph" in text for text in content.warnings)
    assert window.export_report(tmp_path / "noise.pdf") is not None


@pytest.mark.parametrize(("name", "code"), [("turned", ROTATED), ("negative", INVERTED)])
def test_one_click_correction_classifies_the_film_again(qtbot, make_window, films, name, code):
    window = make_window(model=CHEST)
    open_and_wait(qtbot, window, films["upright"], until="probabilities_shown")
    upright = window.analysis.prediction
    before = sha256_file(films[name])
    open_and_wait(qtbot, window, films[name], until="probabilities_shown")
    panel = window.results
    assert code in [w.code for w in panel.warnings] and panel.probabilities_hidden
    assert panel.correct_button.isVisible()
    wait_for(
        qtbot,
        window,
        "probabilities_shown",
        lambda: qtbot.mouseClick(panel.correct_button, Qt_left()),
    )
    assert window.analysis.prediction.predicted == upright.predicted
    assert window.analysis.prediction.probabilities == pytest.approx(
        upright.probabilities,
        abs=1e-3,  # the negative PNG was rounded to 8 bits
    )
    assert code not in [w.code for w in panel.warnings]
    assert "Corrected in memory" in panel.warnings_label.text()
    assert not panel.probabilities_hidden and not panel.correct_button.isVisible()
    restored, original = window.view.xray.render(), load_xray(films["upright"]).render()
    assert np.allclose(restored, original, atol=1.01 / 255)
    assert sha256_file(films[name]) == before  # the file is never changed


def Qt_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_batch_table_has_a_warnings_column_and_a_flagged_only_filter(qtbot, test_model_path, films):
    from PySide6.QtCore import Qt

    from xraydesk.gui.batch_panel import BatchPanel

    panel = BatchPanel()
    panel.set_model(test_model_path, "cpu")
    qtbot.addWidget(panel)
    panel.show()
    try:
        with qtbot.waitSignal(panel.run_finished, timeout=120_000):
            assert panel.start(films["upright"].parent)
        model = panel.results_model
        headers = [
            model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
            for c in range(model.columnCount())
        ]
        column = headers.index("Warnings")
        shown = {
            model.data(model.index(r, 0)): model.data(model.index(r, column))
            for r in range(model.rowCount())
        }
        # the table shows each warning's label (its code is in the tooltip)
        assert shown["upright.png"] == "" and warning_label(NOT_CHEST) in shown["noise.png"]
        assert warning_label(ROTATED) in shown["turned.png"]
        assert warning_label(INVERTED) in shown["negative.png"]
        assert panel.proxy.rowCount() == 4
        panel.flagged_check.setChecked(True)
        names = {r.path.name for r in panel.proxy.shown_rows()}
        assert names == {"turned.png", "negative.png", "noise.png"}  # flagged rows only
        panel.flagged_check.setChecked(False)
        assert panel.proxy.rowCount() == 4  # nothing was dropped
    finally:
        panel.shutdown()
