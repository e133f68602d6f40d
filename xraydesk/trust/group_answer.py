"""What a withheld answer can still say: the finding the model is sure of, not which class.

The operating rule withholds a class below its threshold. When the classes the model
hesitates between form one finding on its card (``model.class_groups``: bacterial or
viral, both pneumonia), the same rule is asked again of the probabilities with each
group summed; if the group passes it, the indeterminate warning says so. The class stays
withheld (every front door still reports the result as indeterminate, prediction None):
the sentence only keeps "pneumonia, type not named" from reading as "the model is not
sure of anything". One function for the card's rule and a site profile's, so both say it
the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xraydesk.model.card import ModelCard
from xraydesk.model.class_groups import ClassGroup, collapsed

# What ``passing_group`` found: the group the rule accepts and its summed probability.
Found = tuple[ClassGroup, float] | None


def sure_of(card: ModelCard, found: Found) -> str | None:
    """A sentence naming the class group ``passing_group`` found, None when none passed."""
    if found is None:
        return None
    group, probability = found
    members = group.members(card.display_names)
    return (
        f"The model finds {group.name}, without naming which kind: {members} together "
        f"have {probability:.1%}, which the rule accepts; read the image for its kind."
    )


def group_id(found: Found) -> str | None:
    """The id of the group ``sure_of`` names (``Verdict.finding``), None when none passed."""
    return None if found is None else found[0].id


def passing_group(
    card: ModelCard, probabilities: np.ndarray, withholds: Callable[[np.ndarray], bool]
) -> Found:
    """The group on top of the grouped probabilities, with its summed probability, when
    ``withholds`` lets it pass; None otherwise (or when the card has no groups)."""
    if not card.class_groups:
        return None
    values, names = collapsed(probabilities, card.class_ids, card.class_groups)
    top = int(np.argmax(values))
    group = next((g for g in card.class_groups if g.id == names[top]), None)
    if group is None or withholds(values):
        return None
    return group, float(values[top])


def group_figures(
    card: ModelCard, probabilities: np.ndarray, labels: np.ndarray
) -> dict[str, dict[str, float | int | None]]:
    """For each of the card's groups, on labelled rows of probabilities (N, classes) at the
    card's temperature: how many films its operating rule withholds (``withheld``), how
    many of those the group is named for (``named``, as ``sure_of`` decides) and the share
    of those whose label is in the group (``in_group``): the evidence the card states."""
    rule = card.operating_rule
    if rule is None or not card.class_groups:
        return {}
    probs = np.asarray(probabilities, dtype=np.float64)
    withheld = [i for i, row in enumerate(probs) if rule.indeterminate(row)]
    out: dict[str, dict[str, float | int | None]] = {}
    for group in card.class_groups:
        members = {card.class_ids.index(c) for c in group.classes}
        named = [
            i
            for i in withheld
            if (found := passing_group(card, probs[i], rule.indeterminate)) is not None
            and found[0] == group
        ]
        right = sum(int(labels[i]) in members for i in named)
        out[group.id] = {
            "n": len(probs),
            "withheld": len(withheld),
            "named": len(named),
            "in_group": right / len(named) if named else None,
        }
    return out
