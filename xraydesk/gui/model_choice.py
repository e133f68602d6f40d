"""Which model the viewer uses: the library's models plus cards chosen by path.

A card chosen by path (outside the library) stays listed for the session and, through
the settings, the next start. Kept out of the main window so the rules for "which model
is current" read in one place.
"""

from __future__ import annotations

import logging
from pathlib import Path

from xraydesk.errors import ModelError, XRayDeskError
from xraydesk.gui.settings import AppSettings
from xraydesk.imaging.xray import XRay
from xraydesk.model import library
from xraydesk.model.card import ModelCard
from xraydesk.trust.codes import ResultWarning
from xraydesk.trust.population import population_warnings

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
