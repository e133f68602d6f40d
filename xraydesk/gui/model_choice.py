"""Which model the viewer uses: the library's models plus cards chosen by path, and
loading it off the GUI thread.

A card chosen by path (outside the library) stays listed for the session and, through
the settings, the next start. Kept out of the main window so the rules for "which model
is current" read in one place. ``ModelLoader`` loads the active model on a worker
thread: the window is shown, and answers, before the model is ready.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThreadPool, Signal

from xraydesk.errors import ModelError, XRayDeskError
from xraydesk.gui.settings import AppSettings
from xraydesk.gui.worker import Job, start_job
from xraydesk.imaging.xray import XRay
from xraydesk.model import library
from xraydesk.model.card import ModelCard
from xraydesk.trust.codes import ResultWarning
from xraydesk.trust.population import population_warnings

if TYPE_CHECKING:
    from xraydesk.classifier.cache import ClassifierCache

log = logging.getLogger(__name__)


class ModelChoice:
    """The active model's card path (None: no model) and the models to choose from."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.path: Path | None = None
        self.outside: list[ModelCard] = []  # models opened by path, outside the library
        self._remember_outside(settings.model)

    def _remember_outside(self, card_path: str) -> None:
        """A card the user chose by path last time (outside the library) stays listed."""
        if not card_path or not card_path.endswith(".json") or not Path(card_path).is_file():
            return
        try:
            card = ModelCard.read(card_path)
        except ModelError as exc:
            log.warning("the model used last time cannot be read: %s", exc)
            return
        self.outside.append(card)

    def cards(self) -> list[ModelCard]:
        """The library's models, then the ones chosen by path."""
        cards = library.list_models()
        known = {str(c.path) for c in cards}
        return cards + [c for c in self.outside if str(c.path) not in known]

    def current_among(self, cards: list[ModelCard]) -> str | None:
        """The card path to show as current: the active one, else last time's, else the
        first listed (None when there is no model at all)."""
        listed = [str(c.path) for c in cards]
        current = str(self.path) if self.path else self.settings.model
        if current not in listed:
            current = listed[0] if listed else None
        return current

    def resolve(self, name_or_card_path: str | Path) -> Path:
        """The card path of a library name or a card file (listed from now on).

        Raises ModelError (a sentence naming the model and the cause) when there is none.
        """
        card = library.resolve_model(name_or_card_path)
        if card.path is None:
            raise ModelError(f"{name_or_card_path}: the model card has no file")
        card_path = Path(card.path)
        if not any(Path(str(c.path)) == card_path for c in library.list_models()):
            self.outside = [c for c in self.outside if c.path != card.path] + [card]
        return card_path

    def select(self, card_path: Path) -> None:
        """Make this the active model and remember it for the next start."""
        self.path = card_path
        self.settings.model = str(card_path)


def population_check(card_path: Path | None, xray: XRay | None) -> list[ResultWarning]:
    """``outside_population`` for this model and this image's patient, or ``[]`` (no
    model, no image, an unreadable card, or an age the header does not give)."""
    if card_path is None or xray is None:
        return []
    try:
        card = ModelCard.read(card_path)
    except XRayDeskError:
        return []
    return population_warnings(card, xray.metadata)


class ModelLoader(QObject):
    """Loads models into the viewer's classifier cache on a worker thread and says when.

    The analysis of an image opened meanwhile asks the same cache for the same model and
    waits for this load (the cache holds its lock while loading), so opening an image
    before the model is ready queues it; it never fails for that reason.
    """

    loading = Signal(object)  # card Path: a load started
    ready = Signal(object)  # card Path: in the cache
    failed = Signal(object, str)  # card Path, a sentence naming the model and the cause

    def __init__(self, cache: ClassifierCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one model at a time; a second request waits
        self._pending: set[tuple[str, str]] = set()
        self._jobs: set[_LoadJob] = set()  # alive until their queued ``done`` arrives

    def load(self, card_path: Path, device: str) -> bool:
        """Start loading (True), or False when it is already loaded or loading."""
        key = (str(card_path), device)
        if key in self._pending or self.cache.cached(card_path, device):
            return False
        self._pending.add(key)
        self.loading.emit(card_path)
        job = _LoadJob(self.cache, card_path, device)
        # bound methods of this QObject: delivered in the GUI thread, in emission order
        job.succeeded.connect(self._loaded)
        job.failed.connect(self._load_failed)
        job.done.connect(self._load_done)
        self._jobs.add(job)
        start_job(job, self._pool)
        return True

    def is_loading(self, card_path: Path | None = None) -> bool:
        return any(card_path is None or path == str(card_path) for path, _ in self._pending)

    def wait(self, msecs: int = -1) -> bool:
        """Block until no load is running (shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    def _loaded(self, _result: object) -> None:
        job = self.sender()
        assert isinstance(job, _LoadJob)
        self._pending.discard((str(job.card_path), job.device))
        self.ready.emit(job.card_path)

    def _load_failed(self, error: str) -> None:
        job = self.sender()
        assert isinstance(job, _LoadJob)
        self._pending.discard((str(job.card_path), job.device))
        self.failed.emit(job.card_path, error)

    def _load_done(self) -> None:
        job = self.sender()
        if isinstance(job, _LoadJob):  # a cancelled load (none yet) must not stay pending
            self._pending.discard((str(job.card_path), job.device))
            self._jobs.discard(job)


class _LoadJob(Job):
    """Loads one model into the cache (in a pool thread)."""

    def __init__(self, cache: ClassifierCache, card_path: Path, device: str) -> None:
        super().__init__()
        self.cache = cache
        self.card_path = card_path
        self.device = device

    def work(self) -> None:
        self.cache.get(self.card_path, self.device)

    def unexpected(self, exc: Exception) -> str:
        return f"{self.card_path}: unexpected error loading the model ({exc!r})"
