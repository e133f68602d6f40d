"""The viewer's side of the analysis pipeline: what it asks for and what it shows.

``AnalysisPipeline`` (gui/analysis.py) runs requests in worker threads, newest wins.
``ViewerAnalysis`` holds what the viewer is showing (the file opened last, its image,
prediction and heat map, the seconds each took), starts requests for the active model
and device, and puts each result on the widgets it is bound to (``AnalysisWidgets``) as it
arrives. It knows no window: what the window does about a result (its banner, status
bar, title, actions, public signals) it hears from this object's signals.

The heat-map method (CAM by default, Grad-CAM or Grad-CAM++) is the user's choice, kept
in the settings; changing it recomputes only the heat map of the image on screen.

Whether the map is shown is ``viewer.heat_policy``'s rule, asked in ``heat_hold_of`` by
the screen and the exports alike: not while the probabilities are held back, never for
a result that names no class (it would name the class withheld), and not by default
for a Normal answer (offered on a button, labelled as what supports Normal).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QLabel

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
from xraydesk.gui.banner import ERROR, INFO, WARNING
from xraydesk.gui.image_view import ImageView
from xraydesk.gui.metadata_panel import MetadataPanel
from xraydesk.gui.model_choice import population_check
from xraydesk.gui.qt_images import render_display
from xraydesk.gui.results_panel import ResultsPanel
from xraydesk.gui.settings import AppSettings
from xraydesk.imaging.xray import XRay
from xraydesk.logs import log_hint
from xraydesk.printable import printable
from xraydesk.trust.check import CheckedResult
from xraydesk.trust.orient import (
    FLIPPED_BY_USER,
    corrected,
    correction_text,
    flipped_left_right,
)
from xraydesk.viewer.heat_policy import HeatHold, heat_caption, heat_hold
from xraydesk.viewer.windowing import window_presets

ActiveModel = Callable[[], tuple[Path | None, str]]  # the card path to use (or None), device


def cannot_open(cause: str, shown: XRay | None) -> str:
    """The banner's words for a file that did not open: the cause on one line with every
    byte named, and the image that stays on screen."""
    text = f"Cannot open {printable(cause).rstrip('. ')}."
    return text if shown is None else f"{text} Still showing {printable(shown.path.name)}."


@dataclasses.dataclass(frozen=True)
class AnalysisWidgets:
    """Where the analysis shows what it has: the image, the results, the image info and
    the status bar's timing readout."""

    view: ImageView
    results: ResultsPanel
    metadata: MetadataPanel
    timing_label: QLabel


class ViewerAnalysis(QObject):
    """The current image and its results, for one viewer (bound to its widgets)."""

    image_shown = Signal(object)  # Path
    probabilities_shown = Signal(object)  # Prediction
    overlay_shown = Signal(object)  # CamResult
    analysis_finished = Signal()  # the newest request has nothing more to deliver
    message = Signal(str, str)  # text for the banner, its kind (banner.ERROR, WARNING, INFO)
    status = Signal(str, int)  # status-bar text ("" clears it), milliseconds (0: until replaced)
    title_changed = Signal(str)  # the window title for the image on screen
    actions_changed = Signal()  # what can be done with the image changed

    def __init__(
        self,
        settings: AppSettings,
        active_model: ActiveModel,
        cache: ClassifierCache | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._active_model = active_model
        self.widgets: AnalysisWidgets | None = None  # ``bind`` before the first request
        self.current_path: Path | None = None  # the file opened last (even if it failed)
        self.xray: XRay | None = None
        self.prediction: Prediction | None = None
        self.explanation: Explanation | None = None
        self.checked: CheckedResult | None = None  # gate and OOD verdict of the prediction
        self._correction: str | None = None  # what the one-click fix did, until re-checked
        self._heat_requested = False  # the user asked for the map (lifts the Normal default)
        self.heat_held: HeatHold | None = None  # why the computed map is not on screen
        # the image on screen and its results when the last open began
        self._kept: tuple[XRay | None, Prediction | None, Explanation | None] = (None, None, None)
        self._open_started = 0.0
        self.timings: dict[str, float] = {}  # seconds from open: image, probabilities, overlay
        self.method = known_method(settings.heat_map_method)  # explain.METHODS key
        self.pipeline = AnalysisPipeline(cache, parent=self)
        self.pipeline.image_loaded.connect(self._on_image_loaded)
        self.pipeline.prediction_ready.connect(self._on_prediction)
        self.pipeline.checked_ready.connect(self._on_checked)
        self.pipeline.explanation_ready.connect(self._on_explanation)
        self.pipeline.failed.connect(self._on_failed)
        self.pipeline.progress.connect(self._on_progress)
        self.pipeline.finished.connect(self._on_pipeline_finished)

    def bind(self, widgets: AnalysisWidgets) -> None:
        """Show results on these widgets (built after this object, which they call)."""
        self.widgets = widgets
        widgets.results.correct_requested.connect(self.correct_orientation)
        widgets.results.flip_requested.connect(self.flip_left_right)
        widgets.results.answer_shown.connect(lambda _shown: self._apply_heat())

    def _bound(self) -> AnalysisWidgets:
        if self.widgets is None:
            raise RuntimeError("ViewerAnalysis: bind() its widgets before the first request")
        return self.widgets

    def _model_path(self) -> Path | None:
        return self._active_model()[0]

    # -- requests --------------------------------------------------------------------------
    def open(self, path: Path) -> None:
        """Load ``path``, then classify and explain it with the active model."""
        w = self._bound()
        self.current_path = path
        # what is on screen now: if ``path`` cannot be opened, it stays, with its own result
        self._kept = (self.xray, self.prediction, self.explanation)
        self.prediction = self.explanation = None
        self._open_started = time.perf_counter()
        self.timings = {}
        w.timing_label.clear()
        w.results.show_pending(f"Loading {path.name}…")
        self.pipeline.open(path, *self._active_model(), self.method)
        w.view.busy_text = "Loading…"
        w.view.viewport().update()

    def rerun(self) -> None:
        """Classify the current image again (new model or device)."""
        w = self._bound()
        self.prediction = self.explanation = None
        w.view.set_heat_layer(None)
        if self._model_path() is None:
            self.pipeline.cancel()
            w.results.clear_results("No probabilities: no model is available.")
            return
        self._open_started = time.perf_counter()
        self.timings = {}
        if self.xray is not None:
            w.results.show_pending("Classifying…")
            self.pipeline.analyse(self.xray, *self._active_model(), method=self.method)
        elif self.current_path is not None and self.pipeline.busy:
            self.pipeline.open(self.current_path, *self._active_model(), self.method)

    def explain_class(self, class_id: str, requested: bool | None = True) -> None:
        """Show the heat map for another class (default: the predicted one).
        ``requested``: the user chose it (None: an internal redo, which keeps whether
        the map was asked for)."""
        w = self._bound()
        if self.xray is None or self._model_path() is None:
            return
        if requested is not None:
            self._heat_requested = requested
        shown = self.explanation.cam if self.explanation is not None else None
        if shown is not None and (shown.class_id, shown.method) == (class_id, self.method):
            self._apply_heat()
            return
        self.explanation = None
        w.view.set_heat_layer(None)
        w.results.show_cam_pending()
        self._open_started = time.perf_counter()
        self.pipeline.explain(self.xray, *self._active_model(), class_id, self.method)

    def set_method(self, method: str) -> None:
        """Use another heat-map method (a key of ``explain.METHODS``), remembered in the
        settings; only the heat map of the image on screen is computed again, for the
        class it explains now."""
        if method not in METHODS:
            raise ValueError(f"unknown heat-map method {method!r}: choose one of {list(METHODS)}")
        w = self._bound()
        w.results.set_cam_method(method)
        if method == self.method:
            return
        self.method = method
        self._settings.heat_map_method = method
        if self.prediction is None:  # the running request's map is redone on arrival
            return
        shown = self.explanation.cam.class_id if self.explanation is not None else None
        self.explain_class(shown or w.results.cam_class() or self.prediction.predicted, None)

    def request_heat_map(self) -> None:
        """The user asks for the map held back by default (a Normal answer's)."""
        self._heat_requested = True
        self._apply_heat()

    # -- results of the newest request (GUI thread) ----------------------------------------
    @Slot(object)
    def _on_image_loaded(self, loaded: LoadedImage) -> None:
        w = self._bound()
        xray = loaded.xray
        self.xray = xray
        w.view.set_image(xray, loaded.presets, loaded.display)  # resets window and inversion
        w.metadata.show_xray(xray)
        self.title_changed.emit(f"{printable(xray.path.name)} — XRayDesk")
        self._settings.add_recent_file(xray.path)
        self.timings["image"] = time.perf_counter() - self._open_started
        # what the user must be told about this image: the loader's notes (a replaced
        # window, one frame of many) stay in the banner until dismissed
        told = [f"{xray.path.name}: {note}" for note in xray.notes]
        if self._model_path() is None:
            w.results.clear_results("No probabilities: no model is available.")
            w.view.busy_text = ""
            told.append(
                f"{xray.path.name}: no probabilities or heat map, because no model is "
                "installed (see the Results panel)."
            )
        else:
            w.results.show_pending("Classifying…")
        if told:
            self.message.emit("  ".join(told), WARNING)
        self.actions_changed.emit()
        self.image_shown.emit(xray.path)

    def correct_orientation(self) -> None:
        """The one-click fix: turn back / invert back the image in memory (the file is
        never changed), show it and classify it again."""
        checked = self.checked
        if checked is None or self.xray is None or not checked.gate.correctable:
            return
        self._analyse_fixed(corrected(self.xray, checked.gate), correction_text(checked.gate))

    def flip_left_right(self) -> None:
        """The mirrored film's one-click fix (the user's): its pixels mirrored left to
        right in memory, shown, and analysed again on the same path as any image; the
        panel then says the user flipped it."""
        if self.xray is not None:
            self._analyse_fixed(flipped_left_right(self.xray), FLIPPED_BY_USER)

    def _analyse_fixed(self, fixed: XRay, done: str) -> None:
        """Show ``fixed`` (the image on screen put right in memory; the file is never
        changed) and classify it again; ``done`` says what was done, on the panel."""
        w = self._bound()
        w.view.set_image(
            fixed, window_presets(fixed), render_display(fixed, fixed.window, invert=False)
        )
        self.xray = fixed
        self._correction = done
        self.message.emit(f"{fixed.path.name}: {done} (in memory; file unchanged).", INFO)
        self.rerun()

    @Slot(object)
    def _on_checked(self, checked: CheckedResult) -> None:
        if self._correction and checked.correction is None:
            checked = dataclasses.replace(checked, correction=self._correction)
        self._correction = None
        self.checked = checked

    def _profile_line(self) -> str | None:
        """The loaded model's site profile in words (the one its verdicts applied)."""
        model, device = self._active_model()
        cache = self.pipeline.cache
        if model is None or not cache.cached(model, device):
            return None
        profile = cache.get(model, device).site_profile.profile
        return profile.line if profile is not None else None

    @Slot(object)
    def _on_prediction(self, prediction: Prediction) -> None:
        w = self._bound()
        self._heat_requested = False  # a new answer: its map follows the default rule
        self._show_result(prediction)
        w.results.show_profile(self._profile_line())
        self.timings["probabilities"] = time.perf_counter() - self._open_started
        self._update_timing_label()
        self.actions_changed.emit()
        self.probabilities_shown.emit(prediction)

    def _show_result(self, prediction: Prediction) -> None:
        """The bars and the verdict's warnings (a gate failure or an indeterminate result
        holds them back) of ``prediction``."""
        w = self._bound()
        self.prediction = prediction
        w.results.show_prediction(prediction)
        checked = self.checked if self.checked and self.checked.prediction is prediction else None
        # the verdict's warnings include the population's (trust.verdict); without a
        # checked result for this prediction, the population is still checked here
        others = [] if checked is not None else population_check(self._model_path(), self.xray)
        w.results.show_trust(checked, others)

    def heat_hold_of(self, explanation: Explanation) -> HeatHold | None:
        """Why ``explanation``'s map may not be shown now (None: it may): the one rule
        (``viewer.heat_policy``) that the screen, the PNG and the PDF exports all ask."""
        results = self._bound().results
        return heat_hold(
            answer_hidden=results.probabilities_hidden,
            explained=explanation.cam.class_id,
            explained_name=self._class_name(explanation),
            requested=self._heat_requested,
            empty=explanation.empty,
            no_class=results.names_no_class,
        )

    def _apply_heat(self) -> None:
        """Put the current explanation on screen, or say why it is held back: not while
        the probabilities are hidden nor when the result names no class, not by default
        for a Normal answer."""
        w = self._bound()
        explanation = self.explanation
        if explanation is None:
            return
        class_name = self._class_name(explanation)
        hold = self.heat_hold_of(explanation)
        self.heat_held = hold
        method = method_label(explanation.cam.method)
        if hold is not None:
            w.view.set_heat_layer(None)
            w.results.show_cam_held(hold, class_name)
        elif explanation.empty:  # nothing to colour: say so, never "what supports ..."
            w.view.set_heat_layer(None)
            w.results.show_cam_empty(class_name, method)
        else:
            w.view.set_heat_layer(explanation.layer, heat_caption(class_name))
            w.results.show_cam_done(class_name, explanation.cam.seconds, method)
            w.results.set_cam_class(explanation.cam.class_id)

    @Slot(object)
    def _on_explanation(self, explanation: Explanation) -> None:
        if explanation.cam.method != self.method and self.xray is not None:
            self.explain_class(explanation.cam.class_id, None)  # the method changed meanwhile
            return
        self.explanation = explanation
        self._apply_heat()
        self.timings["overlay"] = time.perf_counter() - self._open_started
        self._update_timing_label()
        self.overlay_shown.emit(explanation.cam)

    @Slot(object)
    def _on_failed(self, failure: Failure) -> None:
        w = self._bound()
        if failure.details:  # an unexpected error: its traceback goes to the log file
            logging.getLogger(__name__).error("%s failed:\n%s", failure.stage, failure.details)
            message = f"{failure.message}. Details are in {log_hint()}."
            failure = dataclasses.replace(failure, message=message)
        w.view.busy_text = ""
        self.status.emit("", 0)
        if failure.stage == STAGE_IMAGE:
            self._keep_previous(failure)
        elif failure.stage == STAGE_CAM:
            w.results.show_cam_failed(failure.message)
            self.message.emit(f"No heat map: {failure.message}", WARNING)
        else:
            w.results.clear_results(f"No probabilities ({failure.stage} failed).")
            self.message.emit(f"The {failure.stage} failed: {failure.message}", ERROR)
        self.actions_changed.emit()

    def _keep_previous(self, failure: Failure) -> None:
        """A file that cannot be opened leaves the image on screen where it is.

        The image stays with the results computed for it (they were kept together when
        the open began), never with another file's; when its results had not arrived
        yet, it is classified again, so nothing stale or half-done is shown.
        """
        w = self._bound()
        xray, prediction, explanation = self._kept
        self._kept = (None, None, None)
        if xray is None or w.view.xray is not xray:
            self.xray = self.prediction = self.explanation = None
            w.view.clear()
            w.metadata.show_xray(None)
            w.results.clear_results("No image.")
            self.title_changed.emit("XRayDesk")
            self.message.emit(cannot_open(failure.message, None), ERROR)
            return
        self.xray = xray
        self.message.emit(cannot_open(failure.message, xray), ERROR)
        if prediction is None:
            self.rerun()
            return
        self._show_result(prediction)  # with its verdict: what was held back stays so
        self.explanation = explanation
        if explanation is None:
            self.explain_class(prediction.predicted, None)
        else:
            self._apply_heat()

    def _class_name(self, explanation: Explanation) -> str:
        names = self.prediction.display_names if self.prediction else {}
        return names.get(explanation.cam.class_id, explanation.cam.class_id)

    @Slot(str)
    def _on_progress(self, text: str) -> None:
        w = self._bound()
        w.view.busy_text = text
        w.view.viewport().update()
        self.status.emit(text, 0)

    @Slot()
    def _on_pipeline_finished(self) -> None:
        w = self._bound()
        w.view.busy_text = ""
        w.view.viewport().update()
        if self.timings:
            self.status.emit("Ready.", 3000)
        self.analysis_finished.emit()

    def _update_timing_label(self) -> None:
        w = self._bound()
        parts = []
        if "probabilities" in self.timings:
            parts.append(f"probabilities {self.timings['probabilities']:.2f} s")
        if "overlay" in self.timings:
            parts.append(f"heat map {self.timings['overlay']:.2f} s")
        w.timing_label.setText("Open → " + ", ".join(parts) if parts else "")
