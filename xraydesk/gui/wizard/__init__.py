"""The fine-tuning wizard (data, settings, training, results) over ``xraydesk.train``."""

from xraydesk.gui.wizard.wizard import TrainingWizard

__all__ = ["TrainingWizard"]
