"""Loading, inference and the heat map off the GUI thread, newest request wins.

Every request (open a file, re-run with another model, explain another class) is an
``AnalysisJob`` (the GUI's one worker idiom, gui/worker.py) with a new request id, run
on the pipeline's thread pool. A newer request cancels the older jobs, which stop at
their next stage; results that still arrive late are dropped in the GUI thread. The
stages run in the order a reader needs them: image, then probabilities (emitted at
once), then the heat map, so the probabilities never wait for the heat map.

The default heat map (CAM, explain/cam.py) is computed from the activations of the very
forward pass that gave the probabilities and the out-of-distribution score: one pass
through the network per image. That pass is remembered (``ForwardMemo``) for the image
on screen, so explaining another class costs no network call either; Grad-CAM and
Grad-CAM++, chosen in the viewer, run the grad-cam package (forward and backward).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from xraydesk.classifier import Classifier, ForwardOutputs, Prediction
from xraydesk.classifier.cache import ClassifierCache, shared_cache
from xraydesk.errors import ImageLoadError, XRayDeskError
from xraydesk.explain import (
    DEFAULT_METHOD,
    CamResult,
    heat_map,
    is_empty_heatmap,
    method_label,
)
from xraydesk.explain.cam import CAM
from xraydesk.gui.qt_images import DisplayImage, premultiplied_display, render_display
from xraydesk.gui.worker import Job, start_job
from xraydesk.imaging import load_xray
from xraydesk.imaging.xray import XRay
from xraydesk.trust.check import TrustCheck
from xraydesk.viewer.overlay_layer import heat_layer
from xraydesk.viewer.windowing import WindowPresets, window_presets

log = logging.getLogger(__name__)

STAGE_IMAGE, STAGE_MODEL, STAGE_PREDICT, STAGE_CAM = "image", "model", "prediction", "heat map"


@dataclass(frozen=True)
class LoadedImage:
    xray: XRay
    presets: WindowPresets
    display: DisplayImage  # rendered with the file's window here, off the GUI thread
    seconds: float


@dataclass(frozen=True)
class Explanation:
    cam: CamResult
    layer: DisplayImage | None  # the premultiplied layer (overlay_layer); None when empty
    model: str  # "name version" of the model it explains

    @property
    def empty(self) -> bool:
        """The map explains nothing (empty or flat): shown as a sentence, never coloured."""
        return self.layer is None


@dataclass(frozen=True)
class Failure:
    stage: str
    message: str  # a complete sentence naming the file or model and the cause
    path: Path | None = None
    details: str = ""  # traceback for unexpected errors (never shown by default)


@dataclass(frozen=True)
class Request:
    request_id: int
    path: Path | None = None  # load this file, or
    xray: XRay | None = None  # use this image
    model: Path | None = None  # card path; None: image only
    device: str = "auto"
    predict: bool = True
    cam: bool = True
    cam_class: str | None = None  # None: the predicted class
    method: str = DEFAULT_METHOD  # heat-map method (explain.methods.METHODS)


class ForwardMemo:
    """The last forward pass kept with its image and model, for the heat map of another
    class or method of the image on screen: CAM then needs no network call.

    One entry (about 0.4 MB of activations); the image and the classifier are held by
    reference, so an identity match means the same pixels through the same network.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[XRay, Classifier, ForwardOutputs] | None = None

    def put(self, xray: XRay, classifier: Classifier, forward: ForwardOutputs) -> None:
        if forward.activations is None:
            return
        with self._lock:
            self._entry = (xray, classifier, forward)

    def get(self, xray: XRay, classifier: Classifier) -> ForwardOutputs | None:
        with self._lock:
            entry = self._entry
        if entry is not None and entry[0] is xray and entry[1] is classifier:
            return entry[2]
        return None

    def clear(self) -> None:
        with self._lock:
            self._entry = None


class AnalysisJob(Job):
    """One request's stages on a pool thread: image, probabilities, heat map.

    A newer request cancels it (``Job.cancel``): it stops at the next stage boundary, and
    whatever it still reports is dropped by the pipeline, which passes on only the newest
    request's signals. A stage's own error (a file that cannot be read, a model that does
    not load) arrives as a ``Failure`` through ``stage_failed``; a bug arrives through
    ``failed`` with its traceback kept in ``details``.
    """

    loaded = Signal(object)  # LoadedImage
    checked = Signal(object)  # trust.check.CheckedResult, just before ``predicted``
    predicted = Signal(object)  # Prediction
    explained = Signal(object)  # Explanation
    stage_failed = Signal(object)  # Failure
    # ``progress`` carries the status line (str) of the stage that starts

    def __init__(self, request: Request, cache: ClassifierCache, memo: ForwardMemo) -> None:
        super().__init__()
        self.request = request
        self.cache = cache
        self.memo = memo
        self.stage = STAGE_IMAGE
        self.details = ""  # the traceback of a bug, set before ``failed``

    @property
    def where(self) -> Path | None:
        """The file (or, before it is read, the path asked for) the request is about."""
        req = self.request
        return req.path or (req.xray.path if req.xray else None)

    def unexpected(self, exc: Exception) -> str:
        self.details = traceback.format_exc()
        return f"{self.where}: unexpected error during {self.stage} ({type(exc).__name__}: {exc})"

    def _stale(self) -> bool:
        """A newer request exists (read from the worker: one Event)."""
        return self.cancel_event.is_set()

    def work(self) -> None:
        req = self.request
        xray = req.xray
        self.stage = STAGE_IMAGE
        if req.path is not None:
            if self._stale():
                return
            self.progress.emit(f"Loading {req.path.name}…")
            start = time.perf_counter()
            try:
                xray = load_xray(req.path)
            except ImageLoadError as exc:
                self.stage_failed.emit(Failure(STAGE_IMAGE, str(exc), exc.path))
                return
            presets = window_presets(xray)
            display = render_display(xray, xray.window, invert=False)
            self.loaded.emit(LoadedImage(xray, presets, display, time.perf_counter() - start))
        if req.model is None or xray is None or not (req.predict or req.cam):
            return
        if self._stale():
            return
        self.stage = STAGE_MODEL
        if not self.cache.cached(req.model, req.device):
            self.progress.emit(f"Loading model {req.model.stem}…")
        try:
            classifier = self.cache.get(req.model, req.device)
        except XRayDeskError as exc:
            self.stage_failed.emit(Failure(STAGE_MODEL, str(exc), req.model))
            return
        cam_class = req.cam_class
        if req.predict:
            if self._stale():
                return
            self.stage = STAGE_PREDICT
            self.progress.emit("Classifying…")
            try:  # gate, OOD and the activations for CAM, all from one forward pass
                checked = TrustCheck.of(classifier).classify(xray, activations=True)
            except XRayDeskError as exc:  # e.g. a non-finite output: the engine's sentence
                self.stage_failed.emit(Failure(STAGE_PREDICT, str(exc), xray.path))
                return
            prediction: Prediction = checked.prediction
            if checked.forward is not None:
                self.memo.put(xray, classifier, checked.forward)
            self.checked.emit(checked)
            self.predicted.emit(prediction)
            if cam_class not in classifier.class_ids:
                cam_class = prediction.predicted
        if not req.cam or self._stale():
            return
        self.stage = STAGE_CAM
        self.progress.emit(f"Computing the {method_label(req.method)} heat map…")
        try:
            cam = self._heat_map(classifier, xray, cam_class)
        except XRayDeskError as exc:
            self.stage_failed.emit(Failure(STAGE_CAM, str(exc), xray.path))
            return
        if self._stale():
            return
        empty = is_empty_heatmap(cam.heatmap)
        layer = None if empty else premultiplied_display(heat_layer(cam.heatmap))
        self.explained.emit(Explanation(cam, layer, classifier.card.label))

    def _heat_map(self, classifier: Classifier, xray: XRay, cam_class: str | None) -> CamResult:
        """The requested map; CAM from the remembered forward pass of this image and model
        (the one that gave the probabilities), or from one new forward pass kept for later."""
        method = self.request.method
        forward = None
        if method == CAM:
            forward = self.memo.get(xray, classifier)
            if forward is None:
                forward = classifier.forward(classifier.preprocess(xray)[None])
                self.memo.put(xray, classifier, forward)
        return heat_map(classifier, xray, cam_class, method, forward)


class AnalysisPipeline(QObject):
    """Starts requests and passes on only the results of the newest one."""

    image_loaded = Signal(object)  # LoadedImage
    prediction_ready = Signal(object)  # Prediction
    checked_ready = Signal(object)  # CheckedResult (the verdict), just before prediction_ready
    explanation_ready = Signal(object)  # Explanation
    failed = Signal(object)  # Failure
    progress = Signal(str)
    finished = Signal()  # the newest request has nothing more to deliver

    def __init__(self, cache: ClassifierCache | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.cache = cache if cache is not None else shared_cache()
        self._pool = QThreadPool(self)
        # two threads: a new image can load while the previous one's heat map finishes
        self._pool.setMaxThreadCount(2)
        self._current = 0
        self._jobs: dict[int, AnalysisJob] = {}  # alive until their queued ``done`` arrives
        self.memo = ForwardMemo()

    # -- requests -------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._current in self._jobs

    def open(
        self, path: Path, model: Path | None, device: str = "auto", method: str = DEFAULT_METHOD
    ) -> int:
        return self._submit(path=Path(path), model=model, device=device, method=method)

    def analyse(
        self,
        xray: XRay,
        model: Path,
        device: str = "auto",
        cam_class: str | None = None,
        method: str = DEFAULT_METHOD,
    ) -> int:
        return self._submit(
            xray=xray, model=model, device=device, cam_class=cam_class, method=method
        )

    def explain(
        self, xray: XRay, model: Path, device: str, cam_class: str, method: str = DEFAULT_METHOD
    ) -> int:
        """Only the heat map (another class or method): no classification."""
        return self._submit(
            xray=xray, model=model, device=device, predict=False, cam_class=cam_class, method=method
        )

    def cancel(self) -> None:
        """Make every pending result stale."""
        self._current += 1
        self._cancel_older()

    def wait(self, msecs: int = -1) -> bool:
        """Block until the workers are idle (for shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    def _submit(self, **fields: object) -> int:
        self._current += 1
        self._cancel_older()
        request = Request(self._current, **fields)  # type: ignore[arg-type]
        job = AnalysisJob(request, self.cache, self.memo)
        # bound methods of this QObject: delivered in the GUI thread, in emission order
        job.loaded.connect(self._on_loaded)
        job.checked.connect(self._on_checked)
        job.predicted.connect(self._on_predicted)
        job.explained.connect(self._on_explained)
        job.stage_failed.connect(self._on_failed)
        job.failed.connect(self._on_unexpected)
        job.progress.connect(self._on_progress)
        job.done.connect(self._on_done)
        self._jobs[self._current] = job
        start_job(job, self._pool)
        return self._current

    def _cancel_older(self) -> None:
        for request_id, job in self._jobs.items():
            if request_id != self._current:
                job.cancel()

    def _newest(self) -> AnalysisJob | None:
        """The job whose signal is being delivered, when it is the newest request's."""
        job = self.sender()
        if isinstance(job, AnalysisJob) and job.request.request_id == self._current:
            return job
        return None

    # -- results (GUI thread) -------------------------------------------------------------
    @Slot(object)
    def _on_loaded(self, loaded: LoadedImage) -> None:
        if self._newest():
            self.image_loaded.emit(loaded)

    @Slot(object)
    def _on_checked(self, checked: object) -> None:
        if self._newest():
            self.checked_ready.emit(checked)

    @Slot(object)
    def _on_predicted(self, prediction: Prediction) -> None:
        if self._newest():
            self.prediction_ready.emit(prediction)

    @Slot(object)
    def _on_explained(self, explanation: Explanation) -> None:
        if self._newest():
            self.explanation_ready.emit(explanation)

    @Slot(object)
    def _on_failed(self, failure: Failure) -> None:
        if self._newest():
            self.failed.emit(failure)

    @Slot(str)
    def _on_unexpected(self, message: str) -> None:
        """A bug in a worker (``Job`` has logged its traceback): said as a Failure."""
        job = self._newest()
        if job is not None:
            self.failed.emit(Failure(job.stage, message, job.where, job.details))

    @Slot(object)
    def _on_progress(self, text: object) -> None:
        if self._newest():
            self.progress.emit(str(text))

    @Slot()
    def _on_done(self) -> None:
        job = self.sender()
        if not isinstance(job, AnalysisJob):
            return
        request_id = job.request.request_id
        self._jobs.pop(request_id, None)
        if request_id == self._current:
            self.finished.emit()
