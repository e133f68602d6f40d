"""Which model the viewer uses: the library's models plus cards chosen by path, and
loading it off the GUI thread.

A card chosen by path (outside the library) stays listed for the session and, through
the settings, the next start. Kept out of the main window so the rules for "which model
is current" read in one place. ``ModelLoader`` loads the active model on a worker
thread: the window is shown, and answers, before the model is ready.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from xraydesk.errors import ModelError, XRayDeskError
from xraydesk.gui.settings import AppSettings
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
        self._signals = _LoadSignals(self)  # emitted from the pool, delivered here (queued)
        self._signals.done.connect(self._finished)

    def load(self, card_path: Path, device: str) -> bool:
        """Start loading (True), or False when it is already loaded or loading."""
        key = (str(card_path), device)
        if key in self._pending or self.cache.cached(card_path, device):
            return False
        self._pending.add(key)
        self.loading.emit(card_path)
        self._pool.start(_LoadTask(self.cache, self._signals, card_path, device))
        return True

    def is_loading(self, card_path: Path | None = None) -> bool:
        return any(card_path is None or path == str(card_path) for path, _ in self._pending)

    def wait(self, msecs: int = -1) -> bool:
        """Block until no load is running (shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    def _finished(self, card_path: Path, device: str, error: str | None) -> None:
        self._pending.discard((str(card_path), device))
        if error is None:
            self.ready.emit(card_path)
        else:
            self.failed.emit(card_path, error)


class _LoadSignals(QObject):
    done = Signal(object, str, object)  # card Path, device, error sentence or None


class _LoadTask(QRunnable):
    def __init__(
        self, cache: ClassifierCache, signals: _LoadSignals, card_path: Path, device: str
    ) -> None:
        super().__init__()
        self.cache = cache
        self.signals = signals
        self.card_path = card_path
        self.device = device

    def run(self) -> None:  # runs in the loader's pool thread
        error: str | None = None
        try:
            self.cache.get(self.card_path, self.device)
        except XRayDeskError as exc:
            error = str(exc)
        except Exception as exc:
            log.error("loading %s failed:\n%s", self.card_path, traceback.format_exc())
            error = f"{self.card_path}: unexpected error loading the model ({exc!r})"
        self.signals.done.emit(self.card_path, self.device, error)
