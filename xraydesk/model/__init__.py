"""Models: network, preprocessing, cards, weights, device choice and the library.

The loaded classifier (card + runtime) is ``xraydesk.classifier``, a layer above
``xraydesk.runtime``, which uses this package.

The names below are imported on first use (PEP 562), not with the package: reading
model cards and listing the library (``xraydesk models``, the app's model menu) must not
wait for torch to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xraydesk.lazy_exports import lazy_getattr

# public name -> the module that defines it
_EXPORTS = {
    "ClassInfo": "xraydesk.model.card",
    "ModelCard": "xraydesk.model.card",
    "DeviceChoice": "xraydesk.model.device",
    "select_device": "xraydesk.model.device",
    "list_models": "xraydesk.model.library",
    "resolve_model": "xraydesk.model.library",
    "Preprocessing": "xraydesk.model.preprocessing",
    "load_network": "xraydesk.model.saving",
    "save_model": "xraydesk.model.saving",
}

if TYPE_CHECKING:
    from xraydesk.model.card import ClassInfo, ModelCard
    from xraydesk.model.device import DeviceChoice, select_device
    from xraydesk.model.library import list_models, resolve_model
    from xraydesk.model.preprocessing import Preprocessing
    from xraydesk.model.saving import load_network, save_model


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = [
    "ClassInfo",
    "DeviceChoice",
    "ModelCard",
    "Preprocessing",
    "list_models",
    "load_network",
    "resolve_model",
    "save_model",
    "select_device",
]
