"""The model card's operating rule (``model.operating_rule``), as the one verdict applies it.

Where no site profile is adopted, an answer below the card's threshold is withheld as
indeterminate (prediction None, the withheld answer kept in ``Verdict.indeterminate``);
an adopted site profile's rule replaces the card's (``trust.site_rule``). The warning
says whose rule it was, its threshold, and what the rule was chosen from, and, when the
classes the model hesitates between form one finding on its card, that finding
(``trust.group_answer``).
"""

from __future__ import annotations

import numpy as np

from xraydesk.model.card import ModelCard
from xraydesk.model.operating_rule import OperatingRule, confidence_of
from xraydesk.trust.codes import INDETERMINATE, ResultWarning
from xraydesk.trust.group_answer import Found, sure_of


def card_rule(card: ModelCard) -> OperatingRule | None:
    """The card's rule, None when it has none (the model then answers every image)."""
    return getattr(card, "operating_rule", None)


def card_indeterminate_warning(
    card: ModelCard, rule: OperatingRule, probabilities: np.ndarray, found: Found
) -> ResultWarning:
    """Why an answer is withheld as indeterminate under the model card's operating rule;
    ``found``: the class group that rule accepts (``passing_group``), asked once by the
    caller, which also records it (``Verdict.finding``)."""
    value = float(confidence_of(probabilities, rule.measure))
    below = (
        f"the {rule.measure_words} is {value:.1%}, below the model card's threshold of "
        f"{rule.threshold:.0%} ({card.label}'s operating rule, chosen from "
        f"{rule.source_text})"
    )
    finding = sure_of(card, found)
    if finding is not None:  # what the model is sure of first: it is what a reader acts on
        return ResultWarning(INDETERMINATE, f"{finding} No class is given: {below}.")
    return ResultWarning(
        INDETERMINATE,
        f"{below[0].upper()}{below[1:]}: the model is not sure, so no class is given; read "
        "the image without the model's answer.",
    )
