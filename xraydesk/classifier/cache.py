"""Loaded classifiers kept between images (no Qt here).

Loading a ResNet-50 and checking its weights' hash takes about a second; a reader
opening image after image must not pay that each time. Keyed by (card file, device),
so switching models or devices loads once and switching back is instant. Thread-safe:
workers call ``get`` from the thread pool.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from xraydesk.classifier.core import Classifier


class ClassifierCache:
    def __init__(self, max_entries: int = 2) -> None:
        # two ResNet-50s are ~200 MB: enough to flip between models without hoarding memory
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], Classifier] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, card_path: str | Path, device: str = "auto") -> Classifier:
        """The classifier for this card on this device, loading it on first use."""
        key = (str(Path(card_path).resolve()), device)
        with self._lock:  # held while loading: a second request for the same model waits
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            classifier = Classifier.load(card_path, device=device)
            self._entries[key] = classifier
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return classifier

    def cached(self, card_path: str | Path, device: str = "auto") -> bool:
        """Whether this model is loaded. Never waits for a load in progress (``get`` holds
        the lock while loading): the GUI thread asks, and must not freeze for seconds."""
        key = (str(Path(card_path).resolve()), device)
        return key in self._entries  # one dict lookup: atomic under the GIL

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def refresh_profiles(self) -> None:
        """Re-read every loaded model's site profile (``model.site_profile``) after one
        was adopted or removed, so the next result uses it without reloading the model."""
        from xraydesk.model.site_profile import load_state

        with self._lock:
            for classifier in self._entries.values():
                classifier.site_profile = load_state(classifier.card)


_SHARED: ClassifierCache | None = None
_SHARED_LOCK = threading.Lock()


def shared_cache() -> ClassifierCache:
    """The process-wide cache: every window (and a reopened one) reuses loaded models."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = ClassifierCache()
        return _SHARED
