"""Issue 27 item 4: a film the appearance heads call ``mirrored`` gets a one-click fix in
the results panel, "Flip left-right and analyse again": the pixels are mirrored in
memory (the file is unchanged), analysed again through the viewer's one analysis path,
and the panel says the user flipped the image.

The film is a real pool film written mirrored (tests/real_films.py), so the heads see
the heart on the image's left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from PySide6.QtCore import Qt

from tests.gui.conftest import open_and_wait, wait_for
from tests.real_films import write_real_film
from xraydesk.gui.results_answer import FLIP_TEXT
from xraydesk.trust.codes import MIRRORED
from xraydesk.trust.orient import FLIPPED_BY_USER


@pytest.fixture
def mirrored_film(shared_data: Path, tmp_path: Path) -> Path:
    film = write_real_film(shared_data, tmp_path / "film.png")
    ImageOps.mirror(Image.open(film)).save(film)
    return film


@pytest.mark.data
def test_flip_and_analyse_again(qtbot, make_window, mirrored_film):
    stored = mirrored_film.read_bytes()
    window = make_window()
    panel = window.results
    open_and_wait(qtbot, window, mirrored_film, until="probabilities_shown")
    assert MIRRORED in [w.code for w in panel.warnings]
    assert "mirrored left to right" in panel.warnings_label.text()
    button = panel.flip_button
    assert button.isVisible() and button.text() == FLIP_TEXT
    before = window.analysis.xray.pixels.copy()

    def click() -> None:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    wait_for(qtbot, window, "probabilities_shown", click)
    analysed = window.analysis.checked
    assert analysed is not None and analysed.prediction is window.analysis.prediction
    # the re-analysis ran on the flipped pixels, through the same path (TrustCheck)
    assert np.array_equal(analysed.xray.pixels, before[:, ::-1])
    assert window.view.xray is window.analysis.xray is analysed.xray
    assert MIRRORED not in analysed.codes and not button.isVisible()
    assert f"Corrected in memory: {FLIPPED_BY_USER}" in panel.warnings_label.text()
    assert panel.warnings_label.isVisible()
    assert mirrored_film.read_bytes() == stored  # the file is never changed
