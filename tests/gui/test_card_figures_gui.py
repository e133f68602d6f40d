"""Issue 29 #5: Help > About shows model cards readably (no raw dict); the Models dialog
shows the selected model's per-class and per-pool figures."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from xraydesk.gui.dialogs import AboutDialog
from xraydesk.gui.models_dialog import ModelsDialog
from xraydesk.model import library


def _bundled(name: str):
    return next(c for c in library.list_models() if c.name == name)


def test_about_shows_figures_not_a_python_dict(qtbot):
    card = _bundled("chest-3class")
    dialog = AboutDialog([card])
    qtbot.addWidget(dialog)
    text = dialog.models_text.toPlainText()
    assert "{'" not in text and "per_class" not in text and "confusion_matrix" not in text
    assert "Sensitivity" in text and "Specificity" in text and "Per pool" in text
    normal = card.metrics["test"]["confusion_matrix"][0]
    assert f"{normal[0] / sum(normal) * 100:.1f} %" in text  # normal's sensitivity
    dialog.resize(700, 700)
    dialog.show()


def test_models_dialog_shows_per_class_and_per_pool_figures(qtbot):
    dialog = ModelsDialog()
    qtbot.addWidget(dialog)
    assert "Select a model" in dialog.details.toPlainText()
    dialog.select("chest-3class")
    text = dialog.details.toPlainText()
    card = _bundled("chest-3class")
    assert "Sensitivity" in text and "Specificity" in text
    for pool in card.metrics["test"]["per_source"]:
        assert pool in text
    dialog.show()
