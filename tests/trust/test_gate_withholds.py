"""Issue 27 #6: which of the input gate's findings withhold the class, decided in the one
verdict (``trust.verdict``) and nowhere else.

The viewer hides the numbers of a film the gate flags behind "Show anyway"
(``CheckedResult.gate_failed``); the verdict withholds its class the same way, so the
CLI, the batch engine, the DICOM node and Spark never print a class the viewer holds
back. Unlike the training images (``out_of_distribution``) alone is a warning, not a
withheld answer; auto-orient's correction notes never withhold; a NaN is an error, not
an indeterminate result.
"""

from __future__ import annotations

import numpy as np
import pytest

from xraydesk.trust.codes import (
    INVERTED,
    LATERAL,
    LOW_QUALITY,
    NOT_CHEST,
    OUT_OF_DISTRIBUTION,
    ROTATED,
    ResultWarning,
)
from xraydesk.trust.verdict import GATE_WITHHOLDS, decide

PROBS = np.array([0.1, 0.7, 0.2])

CASES = {  # gate codes -> (corrections, withheld?)
    "nothing": ((), (), False),
    "not_chest": ((NOT_CHEST,), (), True),
    "rotated": ((ROTATED,), (), True),
    "inverted": ((INVERTED,), (), True),
    "lateral": ((LATERAL,), (), True),
    "low_quality": ((LOW_QUALITY,), (), True),
    "ood-alone": ((OUT_OF_DISTRIBUTION,), (), False),
    "corrected-rotation": ((), (ROTATED,), False),
    "corrected-but-lateral": ((LATERAL,), (INVERTED,), True),
}


def _warnings(codes: tuple[str, ...]) -> list[ResultWarning]:
    return [ResultWarning(code, f"{code} found") for code in codes]


@pytest.mark.parametrize("case", list(CASES))
def test_the_gate_withholds_exactly_where_the_viewer_hides(case, test_classifier):
    gate, fixes, withheld = CASES[case]
    verdict = decide(
        test_classifier, PROBS, gate_warnings=_warnings(gate), corrections=_warnings(fixes)
    )
    assert verdict.codes == [*fixes, *gate]  # corrections first, then the gate's
    assert verdict.error is None
    assert verdict.is_indeterminate is withheld
    assert verdict.withheld is withheld
    answer = verdict.indeterminate if withheld else verdict.prediction
    assert answer is not None and answer.predicted == test_classifier.class_ids[1]
    assert (verdict.predicted is None) is withheld
    assert withheld is bool(set(gate) & GATE_WITHHOLDS)


def test_a_nan_is_an_error_not_an_indeterminate_result(test_classifier):
    verdict = decide(
        test_classifier, np.array([np.nan, 0.5, 0.5]), gate_warnings=_warnings((NOT_CHEST,))
    )
    assert verdict.error and not verdict.is_indeterminate and verdict.indeterminate is None
