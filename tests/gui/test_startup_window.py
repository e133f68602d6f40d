"""Start-up of the viewer (issue 13): a window at once, the model in the background.

Wall times are measured by tests/benchmarks/bench_startup.py; these tests check the
order of events instead: what is on screen, and what answers, before the model is ready.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PySide6.QtCore import QTimer

from tests.gui.conftest import SIIM_DICOM, WAIT_MS
from tests.paths import REPO_ROOT

BUNDLED = REPO_ROOT / "models" / "chest-3class.json"


@pytest.mark.parametrize("runtime", ["torch", "auto"])
def test_window_answers_before_the_model_is_loaded_then_classifies(
    qtbot, make_window, samples_dir, runtime, monkeypatch
):
    """The bundled ResNet-50 loads on a worker thread: the window is shown and its event
    loop runs meanwhile, says it is loading, and an image opened before the model is ready
    waits for it and is then classified. Under ``auto`` the model runs in an exported
    runtime (OpenVINO here): closing the window after that once segfaulted in OpenVINO's
    thread teardown (an infer request kept per worker thread)."""
    from xraydesk.classifier.cache import ClassifierCache

    monkeypatch.setenv("XRAYDESK_RUNTIME", runtime)

    cache = ClassifierCache()  # fresh: nothing loaded yet
    window = make_window(model=BUNDLED, cache=cache)
    assert window.isVisible()
    assert window.model_loader.is_loading(BUNDLED)
    assert window.model_state_label.text() == "Loading model chest-3class…"

    # opened before the model is ready (the loader has not reported back: no event ran)
    assert window.open_path(samples_dir / SIIM_DICOM)
    seen_while_loading: list[bool] = []
    QTimer.singleShot(0, lambda: seen_while_loading.append(cache.cached(BUNDLED, "cpu")))
    with qtbot.waitSignal(window.probabilities_shown, timeout=WAIT_MS) as shown:
        pass
    assert seen_while_loading == [False]  # the GUI thread ran while the model was loading

    prediction = shown.args[0]
    assert set(prediction.probabilities) == {"normal", "pneumonia", "covid19"}
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    qtbot.waitUntil(lambda: not window.model_loader.is_loading(), timeout=WAIT_MS)
    assert window.model_state_label.text() == "Model chest-3class ready"
    assert cache.cached(BUNDLED, "cpu")


def test_a_model_that_cannot_load_is_said_and_the_window_stays(qtbot, make_window, tmp_path):
    """A card whose weights are missing: the load fails on the worker, the window says
    so with the file's name and keeps working."""
    from xraydesk.classifier.cache import ClassifierCache

    card = tmp_path / BUNDLED.name  # the card alone, without its weights file
    card.write_bytes(BUNDLED.read_bytes())
    window = make_window(model=card, cache=ClassifierCache())
    with qtbot.waitSignal(window.model_loader.failed, timeout=WAIT_MS) as failed:
        pass
    assert failed.args[0] == card
    assert "chest-3class.safetensors" in failed.args[1]  # names the missing file
    assert window.model_state_label.text() == "Model chest-3class not loaded"
    assert "chest-3class.safetensors" in window.banner.text
    assert window.isVisible()


# Runs the app in a fresh interpreter and reports, for each window shown, whether torch
# had been imported by then; leaves once the main window is up.
PROBE = """
import os, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMainWindow

def _shown(self, event, _original=QMainWindow.showEvent):
    _original(self, event)
    name = type(self).__name__
    print(f"SHOWN {name} torch={'torch' in sys.modules}", flush=True)
    if name == "MainWindow":
        QTimer.singleShot(0, lambda: os._exit(0))

QMainWindow.showEvent = _shown
from xraydesk.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_start_window_is_shown_before_torch_is_imported(samples_dir):
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(samples_dir / SIIM_DICOM)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env=env,
    )
    shown = [line for line in done.stdout.splitlines() if line.startswith("SHOWN")]
    # On a CPU the bundled model runs on an exported runtime: the main window needs no
    # torch either (a machine that may have a GPU asks torch for the Device menu).
    from xraydesk.model.device import nvidia_driver_present

    gpu_maybe = nvidia_driver_present() or sys.platform == "darwin"
    main = "SHOWN MainWindow torch=" + ("True" if gpu_maybe else "False")
    assert shown == ["SHOWN StartWindow torch=False", main], done.stdout + done.stderr
