"""The warnings of a site profile (``model.site_profile``), as the one verdict gives them.

A profile that was refused (edited, or adopted for other weights) is not applied, and
every result says so: the user adopted a calibration and must know it is not in use.
An answer below the profile's indeterminate threshold is withheld with the
``indeterminate`` warning, whose message keeps the top class and its probability.
"""

from __future__ import annotations

from xraydesk.model.site_profile import ProfileState, SiteProfile
from xraydesk.trust.codes import INDETERMINATE, PROFILE_REFUSED, ResultWarning


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


def indeterminate_warning(profile: SiteProfile, confidence: float) -> ResultWarning:
    """Why an answer is withheld as indeterminate under the site's operating rule."""
    return ResultWarning(
        INDETERMINATE,
        f"The top class has {confidence:.1%}, below this site's threshold of "
        f"{profile.indeterminate_below:.0%} (site profile adopted on n = {profile.n} "
        "images): no class is given; read the image without the model's answer.",
    )
