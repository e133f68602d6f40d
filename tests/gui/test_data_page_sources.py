"""Issue 29 #4: the wizard's data page warns when each class comes from a different kind
of file (the shortcut risk), and stays quiet when the classes are alike."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xraydesk import paths
from xraydesk.gui.wizard import TrainingWizard

WAIT_MS = 180_000


@pytest.fixture(autouse=True)
def no_bundled(monkeypatch, tmp_path):
    empty = tmp_path / "no-bundled"
    empty.mkdir()
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: empty)


def _class(folder: Path, count: int, size: int, fmt: str, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    suffix = {"PNG": ".png", "JPEG": ".jpg"}[fmt]
    for k in range(count):
        pixels = rng.integers(0, 255, (size, size), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{k}{suffix}", fmt)


def _checked(qtbot, root: Path) -> TrainingWizard:
    wiz = TrainingWizard(data=[root])
    qtbot.addWidget(wiz)
    wiz.show()
    qtbot.waitUntil(
        lambda: not wiz.data_page.is_checking() and wiz.data_page.outcome is not None,
        timeout=WAIT_MS,
    )
    return wiz


def test_classes_from_different_files_warn_of_a_shortcut(qtbot, tmp_path):
    root = tmp_path / "data"
    _class(root / "normal", 12, 48, "PNG", seed=1)
    _class(root / "pneumonia", 12, 112, "JPEG", seed=2)
    wiz = _checked(qtbot, root)
    page = wiz.data_page
    assert page.isComplete()  # a warning, not a refusal
    assert page.shortcut_warning.isVisible()
    text = page.shortcut_warning.text()
    assert "Shortcut risk" in text and "file format" in text and "image size" in text
    assert "file format" in page.problems.toPlainText()


def test_alike_classes_show_no_warning(qtbot, tmp_path):
    root = tmp_path / "data"
    _class(root / "normal", 12, 48, "PNG", seed=1)
    _class(root / "pneumonia", 12, 48, "PNG", seed=2)
    wiz = _checked(qtbot, root)
    assert wiz.data_page.isComplete()
    assert not wiz.data_page.shortcut_warning.isVisible()
