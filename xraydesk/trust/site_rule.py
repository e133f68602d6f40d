"""The warnings of a site profile (``model.site_profile``), as the one verdict gives them.

A profile that was refused (edited, or adopted for other weights) is not applied, and
every result says so: the user adopted a calibration and must know it is not in use.
An answer below the profile's indeterminate threshold is withheld with the
``indeterminate`` warning, whose message keeps the top class and its probability.
"""

from __future__ import annotations

import numpy as np

from xraydesk.model.card import ModelCard
from xraydesk.model.site_profile import ProfileState, SiteProfile
from xraydesk.trust.codes import INDETERMINATE, PROFILE_REFUSED, ResultWarning
from xraydesk.trust.group_answer import Found, sure_of


def profile_warnings(state: ProfileState | None) -> list[ResultWarning]:
    """``[site_profile_refused]`` when the model's profile was refused, else ``[]``."""
    if state is None or state.refused is None:
        return []
    return [
        ResultWarning(
            PROFILE_REFUSED,
            f"{state.refused} This result uses the model card's calibration instead.",
        )
    ]


def indeterminate_warning(
    card: ModelCard, profile: SiteProfile, probabilities: np.ndarray, found: Found
) -> ResultWarning:
    """Why an answer is withheld as indeterminate under the site's operating rule
    (``probabilities`` at the site's temperature), with the finding the model is sure of
    when its card groups the classes it hesitates between (``found``: ``passing_group``
    of the profile's rule, asked once by the caller, which also records it)."""
    below = (
        f"the top class has {float(np.max(probabilities)):.1%}, below this site's threshold "
        f"of {profile.indeterminate_below:.0%} (site profile adopted on n = {profile.n} "
        "images)"
    )
    finding = sure_of(card, found)
    if finding is not None:  # what the model is sure of first, as under the card's rule
        return ResultWarning(INDETERMINATE, f"{finding} No class is given: {below}.")
    return ResultWarning(
        INDETERMINATE,
        f"{below[0].upper()}{below[1:]}: no class is given; read the image without the "
        "model's answer.",
    )
