"""Loading, inference and the heat map off the GUI thread, newest request wins.

Every request (open a file, re-run with another model, explain another class) gets a
new request id. Workers check the id between stages and stop as soon as a newer
request exists; results that still arrive late are dropped in the GUI thread. The
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

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


class _TaskSignals(QObject):
    """Lives in the GUI thread; workers emit through it (queued across threads)."""

    loaded = Signal(int, object)
    predicted = Signal(int, object)
    checked = Signal(int, object)  # trust.check.CheckedResult, just before ``predicted``
    explained = Signal(int, object)
    progress = Signal(int, str)
    failed = Signal(int, object)
    finished = Signal(int)


class _AnalysisTask(QRunnable):
    def __init__(
        self,
        request: Request,
        signals: _TaskSignals,
        cache: ClassifierCache,
        is_current: Callable[[int], bool],
        memo: ForwardMemo,
    ) -> None:
        super().__init__()
        self.request = request
        self.signals = signals
        self.cache = cache
        self.is_current = is_current
        self.memo = memo

    def run(self) -> None:  # runs in a pool thread
        rid = self.request.request_id
        try:
            self._run(rid)
        except Exception as exc:  # a bug must reach the user as a message, not kill a thread
            stage = getattr(self, "_stage", STAGE_IMAGE)
            where = self.request.path or (self.request.xray.path if self.request.xray else None)
            self.signals.failed.emit(
                rid,
                Failure(
                    stage,
                    f"{where}: unexpected error during {stage} ({type(exc).__name__}: {exc})",
                    where,
                    traceback.format_exc(),
                ),
            )
        finally:
            self.signals.finished.emit(rid)

    def _run(self, rid: int) -> None:
        req = self.request
        xray = req.xray
        self._stage = STAGE_IMAGE
        if req.path is not None:
            if not self.is_current(rid):
                return
            self.signals.progress.emit(rid, f"Loading {req.path.name}…")
            start = time.perf_counter()
            try:
                xray = load_xray(req.path)
            except ImageLoadError as exc:
                self.signals.failed.emit(rid, Failure(STAGE_IMAGE, str(exc), exc.path))
                return
            presets = window_presets(xray)
            display = render_display(xray, xray.window, invert=False)
            loaded = LoadedImage(xray, presets, display, time.perf_counter() - start)
            self.signals.loaded.emit(rid, loaded)
        if req.model is None or xray is None or not (req.predict or req.cam):
            return
        if not self.is_current(rid):
            return
        self._stage = STAGE_MODEL
        if not self.cache.cached(req.model, req.device):
            self.signals.progress.emit(rid, f"Loading model {req.model.stem}…")
        try:
            classifier = self.cache.get(req.model, req.device)
        except XRayDeskError as exc:
            self.signals.failed.emit(rid, Failure(STAGE_MODEL, str(exc), req.model))
            return
        cam_class = req.cam_class
        if req.predict:
            if not self.is_current(rid):
                return
            self._stage = STAGE_PREDICT
            self.signals.progress.emit(rid, "Classifying…")
            try:  # gate, OOD and the activations for CAM, all from one forward pass
                checked = TrustCheck.of(classifier).classify(xray, activations=True)
            except XRayDeskError as exc:  # e.g. a non-finite output: the engine's sentence
                self.signals.failed.emit(rid, Failure(STAGE_PREDICT, str(exc), xray.path))
                return
            prediction: Prediction = checked.prediction
            if checked.forward is not None:
                self.memo.put(xray, classifier, checked.forward)
            self.signals.checked.emit(rid, checked)
            self.signals.predicted.emit(rid, prediction)
            if cam_class not in classifier.class_ids:
                cam_class = prediction.predicted
        if not req.cam or not self.is_current(rid):
            return
        self._stage = STAGE_CAM
        self.signals.progress.emit(rid, f"Computing the {method_label(req.method)} heat map…")
        try:
            cam = self._heat_map(classifier, xray, cam_class)
        except XRayDeskError as exc:
            self.signals.failed.emit(rid, Failure(STAGE_CAM, str(exc), xray.path))
            return
        if not self.is_current(rid):
            return
        empty = is_empty_heatmap(cam.heatmap)
        layer = None if empty else premultiplied_display(heat_layer(cam.heatmap))
        self.signals.explained.emit(rid, Explanation(cam, layer, classifier.card.label))

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
        self._running: set[int] = set()
        self.memo = ForwardMemo()
        self._signals = _TaskSignals(self)
        self._signals.loaded.connect(self._on_loaded)
        self._signals.predicted.connect(self._on_predicted)
        self._signals.checked.connect(self._on_checked)
        self._signals.explained.connect(self._on_explained)
        self._signals.failed.connect(self._on_failed)
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_finished)

    # -- requests -------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._current in self._running

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

    def preload(self, model: Path, device: str = "auto") -> None:
        """Load a model into the cache ahead of the first image (does not supersede requests)."""
        if self.cache.cached(model, device):
            return
        request = Request(self._current, model=model, device=device, predict=False, cam=False)
        self._pool.start(_PreloadTask(request, self._signals, self.cache))

    def cancel(self) -> None:
        """Make every pending result stale."""
        self._current += 1

    def wait(self, msecs: int = -1) -> bool:
        """Block until the workers are idle (for shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    def _submit(self, **fields: object) -> int:
        self._current += 1
        request = Request(self._current, **fields)  # type: ignore[arg-type]
        self._running.add(self._current)
        task = _AnalysisTask(request, self._signals, self.cache, self._is_current, self.memo)
        self._pool.start(task)
        return self._current

    def _is_current(self, request_id: int) -> bool:  # called from workers: an int read
        return request_id == self._current

    # -- results (GUI thread) -------------------------------------------------------------
    @Slot(int, object)
    def _on_loaded(self, rid: int, loaded: LoadedImage) -> None:
        if rid == self._current:
            self.image_loaded.emit(loaded)

    @Slot(int, object)
    def _on_checked(self, rid: int, checked: object) -> None:
        if rid == self._current:
            self.checked_ready.emit(checked)

    @Slot(int, object)
    def _on_predicted(self, rid: int, prediction: Prediction) -> None:
        if rid == self._current:
            self.prediction_ready.emit(prediction)

    @Slot(int, object)
    def _on_explained(self, rid: int, explanation: Explanation) -> None:
        if rid == self._current:
            self.explanation_ready.emit(explanation)

    @Slot(int, object)
    def _on_failed(self, rid: int, failure: Failure) -> None:
        if failure.details:
            log.error("worker error during %s:\n%s", failure.stage, failure.details)
        if rid == self._current:
            self.failed.emit(failure)

    @Slot(int, str)
    def _on_progress(self, rid: int, text: str) -> None:
        if rid == self._current:
            self.progress.emit(text)

    @Slot(int)
    def _on_finished(self, rid: int) -> None:
        self._running.discard(rid)
        if rid == self._current:
            self.finished.emit()


class _PreloadTask(QRunnable):
    def __init__(self, request: Request, signals: _TaskSignals, cache: ClassifierCache) -> None:
        super().__init__()
        self.request = request
        self.signals = signals
        self.cache = cache

    def run(self) -> None:
        assert self.request.model is not None
        try:
            self.cache.get(self.request.model, self.request.device)
        except XRayDeskError as exc:
            failure = Failure(STAGE_MODEL, str(exc), self.request.model)
            self.signals.failed.emit(self.request.request_id, failure)
        except Exception as exc:
            failure = Failure(
                STAGE_MODEL,
                f"{self.request.model}: unexpected error loading the model "
                f"({type(exc).__name__}: {exc})",
                self.request.model,
                traceback.format_exc(),
            )
            self.signals.failed.emit(self.request.request_id, failure)
