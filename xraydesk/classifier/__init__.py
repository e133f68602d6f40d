"""The classifier: a model card with the runtime that runs it, and the loaded ones kept.

Above ``xraydesk.runtime`` in the layers (pyproject.toml's import-linter contracts):
``Classifier.load`` picks the runtime, which uses the cards, weights and network of
``xraydesk.model``.
"""

from xraydesk.classifier.core import Classifier, ForwardOutputs, NonFiniteOutputError, Prediction

__all__ = ["Classifier", "ForwardOutputs", "NonFiniteOutputError", "Prediction"]
