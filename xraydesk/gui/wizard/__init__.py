"""The fine-tuning wizard (data, settings, training, results) over ``xraydesk.trainer``."""

from xraydesk.gui.wizard.wizard import TrainingWizard

__all__ = ["TrainingWizard"]
