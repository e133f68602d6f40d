"""A site profile re-judges answers under its own temperature and rule, but an answer
withheld for evidence outside the lungs stays withheld: the site's temperature keeps the
answer's class, so its heat map and the attention check's verdict are unchanged
(issue 27 item 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xraydesk.batch.rows import ResultRow
from xraydesk.model.site_profile import SiteProfile
from xraydesk.trust import decide
from xraydesk.trust.codes import EVIDENCE_OUTSIDE_LUNGS
from xraydesk.validate.labels import LabelledImage
from xraydesk.validate.profile_fit import with_profile
from xraydesk.validate.site_run import SiteImage


def _image(classifier, lung_share: float) -> SiteImage:
    verdict = decide(classifier, np.array([0.8, 0.15, 0.05]), lung_share=lung_share)
    row = ResultRow(path=Path("a.png"), model=classifier.card.label)
    row.take_verdict(verdict, classifier.class_ids)
    label = classifier.class_ids[0]
    return SiteImage(LabelledImage(Path("a.png"), "a.png", label, label), row)


def test_a_profile_keeps_an_answer_withheld_for_evidence_outside_the_lungs(test_classifier):
    card = test_classifier.card
    thresholds = {cid: 0.5 for cid in card.class_ids}
    never = SiteProfile(card.name, card.weights_sha256, 1.0, 0.0, thresholds, 0.9, {"n": 4})
    outside, inside = _image(test_classifier, 0.05), _image(test_classifier, 0.6)
    assert outside.row.indeterminate and outside.row.prediction is None
    kept, answered = with_profile(never, card, [outside, inside])
    assert kept.row.indeterminate and kept.row.prediction is None
    assert EVIDENCE_OUTSIDE_LUNGS in [w.code for w in kept.row.warnings]
    assert not answered.row.indeterminate and answered.row.prediction == card.class_ids[0]
