"""The fine-tuning wizard (data, settings, training, results) over ``xraydesk.train``,
and the model library dialog (list, rename, delete, use)."""

from xraydesk.gui.wizard.models_dialog import ModelsDialog
from xraydesk.gui.wizard.wizard import TrainingWizard

__all__ = ["ModelsDialog", "TrainingWizard"]
