"""Models: network, preprocessing, cards, weights, device choice and the library."""

from xraydesk.model.card import ClassInfo, ModelCard
from xraydesk.model.classifier import Classifier, Prediction
from xraydesk.model.device import DeviceChoice, select_device
from xraydesk.model.library import list_models, resolve_model
from xraydesk.model.preprocessing import Preprocessing
from xraydesk.model.storage import load_network, save_model

__all__ = [
    "ClassInfo",
    "Classifier",
    "DeviceChoice",
    "ModelCard",
    "Prediction",
    "Preprocessing",
    "list_models",
    "load_network",
    "resolve_model",
    "save_model",
    "select_device",
]
