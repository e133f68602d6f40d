"""The viewer's side of the analysis pipeline: what it asks for and what it shows.

``AnalysisPipeline`` (gui/analysis.py) runs requests in worker threads, newest wins.
``ViewerAnalysis`` holds what the main window is showing (the file opened last, its image,
prediction and heat map, the seconds each took), starts requests for the active model
and device, and puts each result on the window's widgets as it arrives.

The heat-map method (CAM by default, Grad-CAM or Grad-CAM++) is the user's choice, kept
in the settings; changing it recomputes only the heat map of the image on screen.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from xraydesk.classifier import Prediction
from xraydesk.classifier.cache import ClassifierCache
from xraydesk.explain import METHODS, known_method, method_label
from xraydesk.gui.analysis import (
    STAGE_CAM,
    STAGE_IMAGE,
    AnalysisPipeline,
    Explanation,
    Failure,
    LoadedImage,
)
from xraydesk.gui.banner import INFO, WARNING
from xraydesk.gui.model_choice import population_check
from xraydesk.gui.qt_images import render_display
from xraydesk.imaging.xray import XRay
from xraydesk.logs import log_hint
from xraydesk.trust.check import CheckedResult
from xraydesk.trust.orient import corrected, correction_text
from xraydesk.viewer.windowing import window_presets

if TYPE_CHECKING:
    from xraydesk.gui.main_window import MainWindow


class ViewerAnalysis(QObject):
    """The current image and its results, for one main window."""

    def __init__(self, window: MainWindow, cache: ClassifierCache | None = None) -> None:
        super().__init__(window)
        self._window = window
        self.current_path: Path | None = None  # the file opened last (even if it failed)
        self.xray: XRay | None = None
        self.prediction: Prediction | None = None
        self.explanation: Explanation | None = None
        self.checked: CheckedResult | None = None  # gate and OOD verdict of the prediction
        self._correction: str | None = None  # what the one-click fix did, until re-checked
        self._correct_connected = False  # the results panel is built after this object
        # the image on screen and its results when the last open began
        self._kept: tuple[XRay | None, Prediction | None, Explanation | None] = (None, None, None)
        self._open_started = 0.0
        self.timings: dict[str, float] = {}  # seconds from open: image, probabilities, overlay
        self.method = known_method(window.settings.heat_map_method)  # explain.METHODS key
        self.pipeline = AnalysisPipeline(cache, parent=self)
        self.pipeline.image_loaded.connect(self._on_image_loaded)
        self.pipeline.prediction_ready.connect(self._on_prediction)
        self.pipeline.checked_ready.connect(self._on_checked)
        self.pipeline.explanation_ready.connect(self._on_explanation)
        self.pipeline.failed.connect(self._on_failed)
        self.pipeline.progress.connect(self._on_progress)
        self.pipeline.finished.connect(self._on_pipeline_finished)

    # -- requests --------------------------------------------------------------------------
    def open(self, path: Path) -> None:
        """Load ``path``, then classify and explain it with the active model."""
        w = self._window
        self.current_path = path
        # what is on screen now: if ``path`` cannot be opened, it stays, with its own result
        self._kept = (self.xray, self.prediction, self.explanation)
        self.prediction = self.explanation = None
        self._open_started = time.perf_counter()
        self.timings = {}
        w.timing_label.clear()
        w.results.show_pending(f"Loading {path.name}…")
        self.pipeline.open(path, w.active_model_path, w.device, self.method)
        w.view.busy_text = "Loading…"
        w.view.viewport().update()

    def rerun(self) -> None:
        """Classify the current image again (new model or device)."""
        w = self._window
        self.prediction = self.explanation = None
        w.view.set_heat_layer(None)
        if w.active_model_path is None:
            self.pipeline.cancel()
            w.results.clear_results("No probabilities: no model is available.")
            return
        self._open_started = time.perf_counter()
        self.timings = {}
        if self.xray is not None:
            w.results.show_pending("Classifying…")
            self.pipeline.analyse(self.xray, w.active_model_path, w.device, method=self.method)
        elif self.current_path is not None and self.pipeline.busy:
            self.pipeline.open(self.current_path, w.active_model_path, w.device, self.method)

    def explain_class(self, class_id: str) -> None:
        """Show the heat map for another class (default: the predicted one)."""
        w = self._window
        if self.xray is None or w.active_model_path is None:
            return
        shown = self.explanation.cam if self.explanation is not None else None
        if shown is not None and (shown.class_id, shown.method) == (class_id, self.method):
            return
        self.explanation = None
        w.view.set_heat_layer(None)
        w.results.show_cam_pending()
        self._open_started = time.perf_counter()
        self.pipeline.explain(self.xray, w.active_model_path, w.device, class_id, self.method)

    def set_method(self, method: str) -> None:
        """Use another heat-map method (a key of ``explain.METHODS``), remembered in the
        settings; only the heat map of the image on screen is computed again, for the
        class it explains now."""
        if method not in METHODS:
            raise ValueError(f"unknown heat-map method {method!r}: choose one of {list(METHODS)}")
        w = self._window
        w.results.set_cam_method(method)
        if method == self.method:
            return
        self.method = method
        w.settings.heat_map_method = method
        if self.prediction is None:  # the running request's map is redone on arrival
            return
        shown = self.explanation.cam.class_id if self.explanation is not None else None
        self.explain_class(shown or w.results.cam_class() or self.prediction.predicted)

    # -- results of the newest request (GUI thread) ----------------------------------------
    @Slot(object)
    def _on_image_loaded(self, loaded: LoadedImage) -> None:
        w = self._window
        xray = loaded.xray
        self.xray = xray
        w.view.set_image(xray, loaded.presets, loaded.display)  # resets window and inversion
        w.metadata.show_xray(xray)
        w.setWindowTitle(f"{xray.path.name} — XRayDesk")
        w.settings.add_recent_file(xray.path)
        self.timings["image"] = time.perf_counter() - self._open_started
        # what the user must be told about this image: the loader's notes (a replaced
        # window, one frame of many) stay in the banner until dismissed
        told = [f"{xray.path.name}: {note}" for note in xray.notes]
        if w.active_model_path is None:
            w.results.clear_results("No probabilities: no model is available.")
            w.view.busy_text = ""
            told.append(
                f"{xray.path.name}: no probabilities or heat map, because no model is "
                "installed (see the Results panel)."
            )
        else:
            w.results.show_pending("Classifying…")
        if told:
            w.show_message("  ".join(told), WARNING)
        w.sync_actions()
        w.image_shown.emit(xray.path)

    def correct_orientation(self) -> None:
        """The one-click fix: turn back / invert back the image in memory (the file is
        never changed), show it and classify it again."""
        w = self._window
        checked = self.checked
        if checked is None or self.xray is None or not checked.gate.correctable:
            return
        fixed = corrected(self.xray, checked.gate)
        w.view.set_image(
            fixed, window_presets(fixed), render_display(fixed, fixed.window, invert=False)
        )
        self.xray = fixed
        self._correction = correction_text(checked.gate)
        w.show_message(f"{fixed.path.name}: {self._correction} (in memory; file unchanged).", INFO)
        self.rerun()

    @Slot(object)
    def _on_checked(self, checked: CheckedResult) -> None:
        if self._correction and checked.correction is None:
            checked = dataclasses.replace(checked, correction=self._correction)
        self._correction = None
        self.checked = checked

    def _profile_line(self) -> str | None:
        """The loaded model's site profile in words (the one its verdicts applied)."""
        w = self._window
        cache = self.pipeline.cache
        if w.active_model_path is None or not cache.cached(w.active_model_path, w.device):
            return None
        profile = cache.get(w.active_model_path, w.device).site_profile.profile
        return profile.line if profile is not None else None

    @Slot(object)
    def _on_prediction(self, prediction: Prediction) -> None:
        w = self._window
        self.prediction = prediction
        w.results.show_prediction(prediction)
        if not self._correct_connected:
            w.results.correct_requested.connect(self.correct_orientation)
            self._correct_connected = True
        checked = self.checked if self.checked and self.checked.prediction is prediction else None
        # the verdict's warnings include the population's (trust.verdict); without a
        # checked result for this prediction, the population is still checked here
        others = [] if checked is not None else population_check(w.active_model_path, self.xray)
        w.results.show_trust(checked, others)
        w.results.show_profile(self._profile_line())
        self.timings["probabilities"] = time.perf_counter() - self._open_started
        self._update_timing_label()
        w.sync_actions()
        w.probabilities_shown.emit(prediction)

    @Slot(object)
    def _on_explanation(self, explanation: Explanation) -> None:
        w = self._window
        if explanation.cam.method != self.method and self.xray is not None:
            self.explain_class(explanation.cam.class_id)  # the method changed meanwhile
            return
        self.explanation = explanation
        names = self.prediction.display_names if self.prediction else {}
        class_name = names.get(explanation.cam.class_id, explanation.cam.class_id)
        method = method_label(explanation.cam.method)
        if explanation.empty:  # nothing to colour: say so, never "Explains ..."
            w.view.set_heat_layer(None)
            w.results.show_cam_empty(class_name, method)
        else:
            w.view.set_heat_layer(explanation.layer, f"Heat map: {class_name}")
            w.results.show_cam_done(class_name, explanation.cam.seconds, method)
        self.timings["overlay"] = time.perf_counter() - self._open_started
        self._update_timing_label()
        w.overlay_shown.emit(explanation.cam)

    @Slot(object)
    def _on_failed(self, failure: Failure) -> None:
        w = self._window
        if failure.details:  # an unexpected error: its traceback goes to the log file
            logging.getLogger(__name__).error("%s failed:\n%s", failure.stage, failure.details)
            message = f"{failure.message}. Details are in {log_hint()}."
            failure = dataclasses.replace(failure, message=message)
        w.view.busy_text = ""
        w.statusBar().clearMessage()
        if failure.stage == STAGE_IMAGE:
            self._keep_previous(failure)
        elif failure.stage == STAGE_CAM:
            w.results.show_cam_failed(failure.message)
            w.show_message(f"No heat map: {failure.message}", WARNING)
        else:
            w.results.clear_results(f"No probabilities ({failure.stage} failed).")
            w.show_message(f"The {failure.stage} failed: {failure.message}")
        w.sync_actions()

    def _keep_previous(self, failure: Failure) -> None:
        """A file that cannot be opened leaves the image on screen where it is.

        The image stays with the results computed for it (they were kept together when
        the open began), never with another file's; when its results had not arrived
        yet, it is classified again, so nothing stale or half-done is shown.
        """
        w = self._window
        xray, prediction, explanation = self._kept
        self._kept = (None, None, None)
        if xray is None or w.view.xray is not xray:
            self.xray = self.prediction = self.explanation = None
            w.view.clear()
            w.metadata.show_xray(None)
            w.results.clear_results("No image.")
            w.setWindowTitle("XRayDesk")
            w.show_message(f"Cannot open {failure.message}")
            return
        self.xray = xray
        cause = failure.message.rstrip(". ")
        w.show_message(f"Cannot open {cause}. Still showing {xray.path.name}.")
        if prediction is None:
            self.rerun()
            return
        self.prediction = prediction
        w.results.show_prediction(prediction)
        w.results.show_warnings(population_check(w.active_model_path, xray))
        self.explanation = explanation
        if explanation is None:
            self.explain_class(prediction.predicted)
        elif explanation.empty:
            w.results.show_cam_empty(
                self._class_name(explanation), method_label(explanation.cam.method)
            )
        else:
            w.results.show_cam_done(
                self._class_name(explanation),
                explanation.cam.seconds,
                method_label(explanation.cam.method),
            )

    def _class_name(self, explanation: Explanation) -> str:
        names = self.prediction.display_names if self.prediction else {}
        return names.get(explanation.cam.class_id, explanation.cam.class_id)

    @Slot(str)
    def _on_progress(self, text: str) -> None:
        w = self._window
        w.view.busy_text = text
        w.view.viewport().update()
        w.statusBar().showMessage(text)

    @Slot()
    def _on_pipeline_finished(self) -> None:
        w = self._window
        w.view.busy_text = ""
        w.view.viewport().update()
        if self.timings:
            w.statusBar().showMessage("Ready.", 3000)
        w.analysis_finished.emit()

    def _update_timing_label(self) -> None:
        w = self._window
        parts = []
        if "probabilities" in self.timings:
            parts.append(f"probabilities {self.timings['probabilities']:.2f} s")
        if "overlay" in self.timings:
            parts.append(f"heat map {self.timings['overlay']:.2f} s")
        w.timing_label.setText("Open → " + ", ".join(parts) if parts else "")
