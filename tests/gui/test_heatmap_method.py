"""Issue 13: the viewer's heat map comes from the forward pass that gave the probabilities
(CAM by default), and the method menu recomputes only the heat map, remembered across
windows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.gui.conftest import open_and_wait, wait_for
from xraydesk.classifier.cache import ClassifierCache
from xraydesk.gui.report import caption_text


@pytest.fixture
def counted(test_model_path: Path):
    """A cache holding the test model, with every call of its network counted."""
    cache = ClassifierCache()
    classifier = cache.get(test_model_path, "cpu")
    calls = [0]

    def count(_module: torch.nn.Module, _args: object) -> None:
        calls[0] += 1

    hook = classifier.network.register_forward_pre_hook(count)
    yield cache, calls
    hook.remove()


def _choose(window, method: str) -> None:
    """What a click in the method menu does."""
    combo = window.results.method_combo
    index = combo.findData(method)
    assert index >= 0, method
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


@pytest.mark.data
def test_open_gives_probabilities_and_cam_from_one_forward(qtbot, make_window, counted, png_path):
    cache, calls = counted
    window = make_window(cache=cache)
    assert window.results.cam_method() == "cam"  # the default
    open_and_wait(qtbot, window, png_path)
    assert calls[0] == 1  # gate, probabilities, OOD features and the map: one pass
    explanation = window.current_explanation
    assert explanation is not None and explanation.cam.method == "cam"
    assert explanation.cam.class_id == window.analysis.prediction.predicted
    assert "CAM" in window.results.cam_label.text()
    # another class: the remembered pass, no network call at all
    other = next(c for c in window.analysis.prediction.probabilities if c != "normal")
    wait_for(qtbot, window, "overlay_shown", lambda: window.explain_class(other))
    assert calls[0] == 1
    assert window.current_explanation.cam.class_id == other


@pytest.mark.data
def test_method_choice_recomputes_only_the_heat_map(qtbot, make_window, counted, png_path):
    cache, calls = counted
    window = make_window(cache=cache)
    open_and_wait(qtbot, window, png_path)
    prediction = window.analysis.prediction
    class_id = window.current_explanation.cam.class_id
    reclassified: list[object] = []
    window.probabilities_shown.connect(reclassified.append)

    wait_for(qtbot, window, "overlay_shown", lambda: _choose(window, "gradcam"))
    explanation = window.current_explanation
    assert explanation.cam.method == "gradcam" and explanation.cam.class_id == class_id
    assert window.analysis.prediction is prediction and not reclassified
    assert "Grad-CAM" in window.results.cam_label.text()
    assert window.settings.heat_map_method == "gradcam"
    caption = caption_text(window.report_content())
    assert "Grad-CAM for" in caption  # the report names the method it shows

    before = calls[0]
    wait_for(qtbot, window, "overlay_shown", lambda: _choose(window, "gradcam++"))
    assert window.current_explanation.cam.method == "gradcam++"
    assert calls[0] > before  # the grad-cam package runs the network again
    before = calls[0]
    wait_for(qtbot, window, "overlay_shown", lambda: _choose(window, "cam"))
    assert window.current_explanation.cam.method == "cam"
    assert calls[0] == before  # CAM from the pass that gave the probabilities
    assert "CAM for" in caption_text(window.report_content())
    assert not reclassified and window.analysis.prediction is prediction


@pytest.mark.data
def test_method_chosen_while_the_image_is_still_analysed(qtbot, make_window, png_path):
    """The map of the method chosen last is the one shown, even when the choice is made
    before the first map arrives (that one is then computed again)."""
    window = make_window()

    def open_then_choose() -> None:
        window.open_path(png_path)
        _choose(window, "gradcam")  # results are still queued: no prediction yet

    wait_for(qtbot, window, "overlay_shown", open_then_choose)
    assert window.current_explanation.cam.method == "gradcam"
    assert window.results.cam_method() == "gradcam"


def test_method_choice_is_remembered(qtbot, make_window):
    window = make_window(model=None)
    _choose(window, "gradcam++")  # no image: only the choice is kept
    assert window.analysis.method == "gradcam++"
    again = make_window(model=None)
    assert again.analysis.method == "gradcam++"
    assert again.results.cam_method() == "gradcam++"
    with pytest.raises(ValueError, match="unknown heat-map method"):
        again.analysis.set_method("score-cam")
