"""The one verdict applies the model card's operating rule, unless a site profile is adopted.

A table of cases: no rule, the card's rule (top probability and margin), an adopted site
profile (its rule wins, stricter or looser than the card's), a refused profile (the card's
rule applies), and non-finite outputs (an error, never indeterminate). The classifier is
the small random test model with its card swapped; the probabilities are given, so each
case says exactly which rule decided.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from xraydesk.classifier import Classifier
from xraydesk.model.operating_rule import MARGIN, VALIDATION_SPLIT, OperatingRule
from xraydesk.model.site_profile import ProfileState, SiteProfile
from xraydesk.trust.verdict import decide

CARD_TOP = OperatingRule(0.6, pools=("pool-a", "pool-b"), n=900, coverage=0.7, accuracy=0.9)
CARD_MARGIN = OperatingRule(0.3, measure=MARGIN, chosen_from=VALIDATION_SPLIT, pools=("a",))
CARD_LOW = OperatingRule(0.3, pools=("pool-a",), n=10)


def _site(classifier: Classifier, below: float) -> ProfileState:
    card = classifier.card
    thresholds = {cid: 0.99 for cid in card.class_ids}
    profile = SiteProfile(
        card.name, card.weights_sha256, card.temperature, below, thresholds, 0.9, {"n": 40}
    )
    return ProfileState(profile)


def _classifier(base: Classifier, rule: OperatingRule | None, site: float | str | None):
    """The test model with ``rule`` on its card and a site profile (its threshold), a
    refused one ("refused") or none."""
    clf = copy.copy(base)
    clf.card = replace(base.card, operating_rule=rule)
    if site == "refused":
        clf.site_profile = ProfileState(None, "site.json: edited.")
    elif site is None:
        clf.site_profile = ProfileState()
    else:
        clf.site_profile = _site(clf, float(site))
    return clf


# rule, site profile threshold, probabilities, expected class (None: indeterminate),
# whose rule the warning names ("card", "site" or None for no indeterminate warning)
CASES = [
    ("none-answers", None, None, [0.40, 0.35, 0.25], "normal", None),
    ("card-top-withholds", CARD_TOP, None, [0.50, 0.30, 0.20], None, "card"),
    ("card-top-answers", CARD_TOP, None, [0.20, 0.70, 0.10], "pneumonia", None),
    ("card-top-at-threshold", CARD_TOP, None, [0.60, 0.30, 0.10], "normal", None),
    ("card-margin-withholds", CARD_MARGIN, None, [0.50, 0.45, 0.05], None, "card"),
    ("card-margin-answers", CARD_MARGIN, None, [0.10, 0.25, 0.65], "covid19", None),
    ("site-looser-wins", CARD_TOP, 0.4, [0.50, 0.30, 0.20], "normal", None),
    ("site-stricter-wins", CARD_LOW, 0.6, [0.50, 0.30, 0.20], None, "site"),
    ("site-without-card-rule", None, 0.6, [0.50, 0.30, 0.20], None, "site"),
    ("refused-site-card-rule", CARD_TOP, "refused", [0.50, 0.30, 0.20], None, "card"),
]


@pytest.mark.parametrize(
    ("rule", "site", "probs", "expected", "whose"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_verdict_table(test_classifier, rule, site, probs, expected, whose) -> None:
    verdict = decide(_classifier(test_classifier, rule, site), np.array(probs))
    assert verdict.predicted == expected
    indeterminate = [w for w in verdict.warnings if w.code == "indeterminate"]
    if whose is None:
        assert not indeterminate and verdict.indeterminate is None
        return
    assert verdict.prediction is None and verdict.error is None
    # the withheld answer is kept, with its probabilities, one click away
    assert verdict.indeterminate.predicted == test_classifier.class_ids[int(np.argmax(probs))]
    assert verdict.indeterminate.probabilities["normal"] == pytest.approx(probs[0])
    (warning,) = indeterminate
    if whose == "card":
        assert "model card's threshold of" in warning.message
        assert f"{rule.threshold:.0%}" in warning.message
        assert rule.source_text in warning.message
    else:
        assert "this site's threshold of 60%" in warning.message
        assert "model card" not in warning.message


def test_refused_profile_is_still_said(test_classifier) -> None:
    verdict = decide(_classifier(test_classifier, CARD_TOP, "refused"), np.array([0.5, 0.3, 0.2]))
    assert verdict.codes == ["site_profile_refused", "indeterminate"]


def test_non_finite_output_is_an_error_not_indeterminate(test_classifier) -> None:
    clf = _classifier(test_classifier, CARD_TOP, None)
    verdict = decide(clf, np.array([np.nan, 0.5, 0.5]))
    assert verdict.error is not None and verdict.indeterminate is None
    assert "indeterminate" not in verdict.codes


def test_margin_warning_names_the_margin(test_classifier) -> None:
    verdict = decide(_classifier(test_classifier, CARD_MARGIN, None), np.array([0.5, 0.45, 0.05]))
    (warning,) = verdict.warnings
    assert warning.message.startswith("The margin is 5.0%, below the model card's threshold")
    assert "validation split (not held-out sources)" in warning.message
