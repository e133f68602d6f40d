"""The tools wired around the viewer: wizard and model manager reach the window."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.gui.conftest import flush_deletes
from xraydesk import paths
from xraydesk.gui.tool_panel import ToolPanel
from xraydesk.gui.tools import install_tools, open_models_dialog, open_wizard
from xraydesk.model.card import ModelCard


def test_tools_are_installed_and_follow_the_window(make_window, qtbot, samples_dir: Path):
    window = make_window()
    tools = install_tools(window)
    assert tools.train_action in window.model_menu.actions()
    assert tools.manage_action in window.model_menu.actions()
    # the batch panel is docked, uses the viewer's model, and opens images in the viewer
    assert tools.batch.window() is window
    assert window.active_model_path is not None
    assert tools.batch.model_label.text()
    image = samples_dir / "fullres" / "nih-00000001_000.png"
    with qtbot.waitSignal(window.probabilities_shown, timeout=60_000):
        tools.batch.open_image_requested.emit(image)


def test_model_device_menu_reaches_the_batch_and_pacs_panels(make_window):
    """Model > Device used to reach only the viewer: the panels kept classifying on the
    device they were given when they were docked."""
    window = make_window()  # on the CPU
    tools = install_tools(window)
    assert tools.pacs is not None
    for panel in (tools.batch, tools.pacs):
        assert isinstance(panel, ToolPanel)  # wired by protocol: opens, follows, stops
        assert (panel.model_path, panel.model_device) == (window.active_model_path, "cpu")
    auto = next(a for a in window.device_group.actions() if a.data() == "auto")
    assert auto.isEnabled()
    auto.trigger()
    assert window.device == "auto"
    for panel in (tools.batch, tools.pacs):
        assert panel.model_path == window.active_model_path
        assert panel.model_device == "auto"


def test_wizard_model_ready_makes_it_the_active_model(make_window, qtbot, test_model_path: Path):
    window = make_window()
    shutil.copy(
        test_model_path.with_suffix(".safetensors"), paths.user_models_dir() / "mine.safetensors"
    )
    mine = ModelCard.read(test_model_path)  # written through the card, so its hash still holds
    mine.name, mine.weights_file = "mine", "mine.safetensors"
    card = paths.user_models_dir() / "mine.json"
    mine.write(card)
    wizard = open_wizard(window)
    assert wizard.isVisible() and not wizard.isModal()
    with qtbot.waitSignal(window.model_changed, timeout=10_000):
        wizard.model_ready.emit(card)
    assert Path(window.active_model_path) == card
    wizard.close()
    dialog = open_models_dialog(window)
    assert dialog.isVisible()
    dialog.close()
    flush_deletes()
