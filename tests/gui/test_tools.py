"""The tools wired around the viewer: wizard and model manager reach the window."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.gui.conftest import flush_deletes
from xraydesk import paths
from xraydesk.gui.tools import install_tools, open_models_dialog, open_wizard


def test_model_menu_gets_train_and_manage(make_window):
    window = make_window()
    actions = install_tools(window)
    assert set(actions) == {"train", "manage"}
    assert actions["train"] in window.model_menu.actions()
    assert actions["manage"] in window.model_menu.actions()


def test_wizard_model_ready_makes_it_the_active_model(make_window, qtbot, test_model_path: Path):
    window = make_window()
    for f in (test_model_path, test_model_path.with_suffix(".safetensors")):
        shutil.copy(f, paths.user_models_dir() / f"mine{f.suffix}")
    card = paths.user_models_dir() / "mine.json"
    text = card.read_text().replace('"name": "test-3class"', '"name": "mine"')
    text = text.replace("test-3class.safetensors", "mine.safetensors")
    card.write_text(text)
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
