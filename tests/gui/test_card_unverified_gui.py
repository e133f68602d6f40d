"""Issue 26.4 (GUI): a model whose card has no integrity record says so with every result
in the viewer's results panel, as the CLI and batch rows do (``card_unverified``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from tests.gui.conftest import open_and_wait
from xraydesk import paths
from xraydesk.trust.codes import CARD_UNVERIFIED


def _unverified_copy(test_model_path: Path) -> Path:
    library = paths.user_models_dir()
    data = json.loads(test_model_path.read_text(encoding="utf-8"))
    data["name"], data["weights"]["file"] = "old-card", "old-card.safetensors"
    first, last = data["classes"][0], data["classes"][-1]
    first["name"], last["name"] = last["name"], first["name"]  # swapped, unseen without a record
    del data["integrity"]
    shutil.copy(test_model_path.with_suffix(".safetensors"), library / "old-card.safetensors")
    out = library / "old-card.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


def test_results_panel_says_the_card_is_unverified(qtbot, make_window, test_model_path, tmp_path):
    window = make_window(model=_unverified_copy(test_model_path))
    film = tmp_path / "film.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (256, 256), dtype=np.uint8)).save(film)
    open_and_wait(qtbot, window, film)
    assert CARD_UNVERIFIED in [w.code for w in window.results.warnings]
    assert window.results.warnings_label.isVisible()
    assert "no integrity record" in window.results.warnings_label.text()
    assert CARD_UNVERIFIED in window.results.warnings_label.toolTip()
