"""When a result must not be trusted: stable warning codes and the checks that raise them.

Qt-free, so the batch engine, the CLI, the exports and the GUI all give the same
warnings. ``codes`` holds the codes (issues 14 and 19), ``population`` the check of a
patient's age against the model card's population.
"""

from xraydesk.trust.codes import WARNING_CODES, ResultWarning
from xraydesk.trust.population import population_warnings

__all__ = ["WARNING_CODES", "ResultWarning", "population_warnings"]
