"""Issue 19 #4 (GUI): a model applied outside its population says so, in the results
panel, the report, and when switching to it with such an image open."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.dicom_factory import make_dicom
from tests.gui.conftest import open_and_wait
from tests.paths import REPO_ROOT
from xraydesk import paths
from xraydesk.gui.report import caption_text
from xraydesk.model.card import AgeRange, ModelCard, Population
from xraydesk.trust.codes import OUTSIDE_POPULATION


@pytest.fixture
def pediatric_card(test_model_path: Path) -> Path:
    """The test model, stated to be trained on children up to 16."""
    card = ModelCard.read(test_model_path)
    card.name, card.weights_file = "kids", "kids.safetensors"
    card.population = Population((AgeRange(0, 16),), "children")
    shutil.copy(
        test_model_path.with_suffix(".safetensors"), paths.user_models_dir() / card.weights_file
    )
    out = paths.user_models_dir() / "kids.json"
    card.write(out)
    return out


@pytest.fixture
def chest_pixels(shared_data: Path) -> np.ndarray:
    """A real test-split radiograph as 12-bit pixels: the input gate (issue 14) lets it
    through, so the only warning left to see is the population's."""
    from tests.xrays import split_test_paths
    from xraydesk.imaging.loader import load_xray

    unit = load_xray(shared_data / split_test_paths(1)[0]).render()
    return np.round(unit * 4095).astype(np.uint16)


def _film(path: Path, age: str, pixels: np.ndarray) -> Path:
    return make_dicom(path, pixels, bits_stored=12, extra={"PatientAge": age, "PatientSex": "F"})


def test_results_and_report_warn_outside_the_population(
    qtbot, make_window, pediatric_card, tmp_path, chest_pixels
):
    window = make_window(model=pediatric_card)
    open_and_wait(qtbot, window, _film(tmp_path / "adult.dcm", "068Y", chest_pixels))
    warnings = window.results.warnings
    assert [w.code for w in warnings] == [OUTSIDE_POPULATION]
    assert window.results.warnings_label.isVisible()
    assert "68 years" in window.results.warnings_label.text()
    content = window.report_content()
    assert content.warnings and "68 years" in content.warnings[0]
    assert window.export_report(tmp_path / "r.pdf") is not None
    # a child inside the population: no warning
    open_and_wait(qtbot, window, _film(tmp_path / "child.dcm", "006Y", chest_pixels))
    assert window.results.warnings == [] and not window.results.warnings_label.isVisible()
    assert caption_text(window.report_content())


def test_switching_to_a_model_that_excludes_the_patient_warns(
    qtbot, make_window, test_model_path, pediatric_card, tmp_path, chest_pixels
):
    window = make_window(model=test_model_path)  # states no population: says nothing
    open_and_wait(qtbot, window, _film(tmp_path / "adult.dcm", "081Y", chest_pixels))
    assert window.results.warnings == []
    assert window.set_active_model(pediatric_card)  # what the wizard's "Use this model" does
    assert "outside the population" in window.banner.text and "81 years" in window.banner.text


BUNDLED_PEDIATRIC = REPO_ROOT / "models" / "pediatric-pneumonia.json"


def test_the_window_shows_the_one_verdicts_population_warning_once(
    qtbot, make_window, tmp_path, chest_pixels
):
    """Issue 24 #4 / 26 #6: the viewer's result is the verdict every front door gives
    (``trust.verdict``), population included, and the panel shows its warning once."""
    window = make_window(model=BUNDLED_PEDIATRIC)
    open_and_wait(qtbot, window, _film(tmp_path / "adult.dcm", "030Y", chest_pixels))
    checked = window.analysis.checked
    assert checked is not None and checked.verdict is not None
    assert OUTSIDE_POPULATION in checked.codes  # in the verdict, not added by the window
    codes = [w.code for w in window.results.warnings]
    assert codes.count(OUTSIDE_POPULATION) == 1 and codes == checked.codes
    assert "30 years" in window.results.warnings_label.text()
    open_and_wait(qtbot, window, _film(tmp_path / "toddler.dcm", "003Y", chest_pixels))
    assert OUTSIDE_POPULATION not in window.analysis.checked.codes
    assert OUTSIDE_POPULATION not in [w.code for w in window.results.warnings]
