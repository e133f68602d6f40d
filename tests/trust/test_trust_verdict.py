"""Issue 24 #4 and issue 26 #6: one verdict (``xraydesk.trust.verdict``) turns a model's
outputs into a result for every front door, so the population warning (a patient outside
the ages the model card states) reaches the engine's rows, the one-image check and Spark.

The films are DICOMs made here from one real test-split radiograph, differing only in
PatientAge: whatever else the checks say is the same for all of them, and only the
population warning follows the age. The CLI, the results database and the DICOM node
are covered in ``test_trust_front_doors.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.trust.age_films import AGES, MODELS, OUTSIDE, make_films
from xraydesk.batch.run import classify_paths
from xraydesk.classifier import Classifier
from xraydesk.imaging import load_xray
from xraydesk.imaging.xray import ImageMetadata
from xraydesk.trust import TrustCheck, Verdict, decide, decide_all
from xraydesk.trust.codes import (
    LOW_QUALITY,
    OUT_OF_DISTRIBUTION,
    OUTSIDE_POPULATION,
    ResultWarning,
)
from xraydesk.trust.ood import OODStatistics


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory, chest_pixels: np.ndarray) -> dict[str, Path]:
    return make_films(tmp_path_factory.mktemp("ages"), chest_pixels)


@pytest.fixture(scope="module")
def classifiers() -> dict[str, Classifier]:
    return {name: Classifier.load(card, device="cpu") for name, card in MODELS.items()}


def _others(codes: list[str]) -> list[str]:
    return [c for c in codes if c != OUTSIDE_POPULATION]


# -- the function ----------------------------------------------------------------------------


def test_decide_orders_gate_ood_population_and_withholds_nan(classifiers):
    pediatric = classifiers["pediatric-pneumonia"]
    ood = OODStatistics.from_card(pediatric.card)
    assert ood is not None
    adult = ImageMetadata(Path("a.dcm"), "DICOM", age_years=68.0)
    gate = [ResultWarning(LOW_QUALITY, "too small")]
    probs = np.array([0.05, 0.9, 0.05])  # above the card's operating rule (top 0.83)
    verdict = decide(
        pediatric, probs, gate_warnings=gate, ood=ood, ood_score=ood.threshold + 1, metadata=adult
    )
    # the gate's low_quality withholds the class (as the viewer hides it): indeterminate,
    # the answer kept apart
    assert isinstance(verdict, Verdict) and verdict.withheld and verdict.is_indeterminate
    assert verdict.codes == [LOW_QUALITY, OUT_OF_DISTRIBUTION, OUTSIDE_POPULATION]
    assert verdict.predicted is None and verdict.error is None
    assert verdict.indeterminate is not None
    assert verdict.indeterminate.predicted == pediatric.class_ids[1]
    expected = dict(zip(pediatric.class_ids, probs, strict=True))
    assert verdict.indeterminate.probabilities == pytest.approx(expected)
    assert "68 years" in verdict.warnings[-1].message
    ood_only = decide(pediatric, probs, ood=ood, ood_score=ood.threshold + 1, metadata=adult)
    assert ood_only.predicted == pediatric.class_ids[1]  # unlike training: named, warned
    assert not ood_only.is_indeterminate

    nan = decide(pediatric, np.array([np.nan, 0.5, 0.5]), ood=ood, ood_score=0.0, metadata=adult)
    assert nan.withheld and nan.probabilities is None and nan.predicted is None
    assert "not a number" in (nan.error or "")
    assert nan.codes == [OUTSIDE_POPULATION]  # an error row still says what was wrong

    child = ImageMetadata(Path("c.dcm"), "DICOM", age_years=3.0)
    assert decide(pediatric, probs, ood=ood, ood_score=0.0, metadata=child).codes == []
    # below the card's operating rule: indeterminate, the card's rule named in the warning
    unsure = decide(pediatric, np.array([0.2, 0.7, 0.1]), ood=ood, ood_score=0.0, metadata=child)
    assert unsure.is_indeterminate and unsure.codes == ["indeterminate"]
    assert "model card's threshold of 83%" in unsure.warnings[0].message
    assert decide(pediatric, probs, metadata=child, stated_age=40.0).codes == [OUTSIDE_POPULATION]
    assert decide(pediatric, probs).codes == []  # no age known: nothing said


def test_decide_all_scores_the_batch_and_keeps_each_images_metadata(classifiers):
    pediatric = classifiers["pediatric-pneumonia"]
    ood = OODStatistics.from_card(pediatric.card)
    assert ood is not None
    features = np.stack([ood.means[0], ood.means[0] + 1e3]).astype(np.float32)
    ages = [ImageMetadata(Path("a"), "DICOM", age_years=a) for a in (68.0, 2.0)]
    first, second = decide_all(
        pediatric,
        np.array([[0.05, 0.9, 0.05], [0.9, 0.05, 0.05]]),
        features,
        ood=ood,
        metadata=ages,
    )
    assert first.codes == [OUTSIDE_POPULATION] and first.ood_score is not None
    assert second.codes == [OUT_OF_DISTRIBUTION]
    assert first.ood_score < second.ood_score


# -- the front doors on the engine -----------------------------------------------------------


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_one_image_check_flags_ages_outside_the_population(model, classifiers, films):
    """The viewer's and the DICOM results' path (``TrustCheck``)."""
    check = TrustCheck.of(classifiers[model])
    results = {age: check.classify(load_xray(path)) for age, path in films.items()}
    flagged = {age for age, r in results.items() if OUTSIDE_POPULATION in r.codes}
    assert flagged == OUTSIDE[model]
    assert len({tuple(_others(r.codes)) for r in results.values()}) == 1
    for r in results.values():
        assert r.verdict is not None and r.verdict.warnings == r.warnings


@pytest.mark.parametrize("model", sorted(MODELS))
def test_batch_rows_flag_ages_outside_the_population(model, classifiers, films):
    """``BatchRun`` (the CLI, the GUI's batch panel and the DICOM node run through it)."""
    rows = list(classify_paths([films[a] for a in AGES], classifiers[model]))
    assert [r.path.name for r in rows] == [f"age-{a}.dcm" for a in AGES]
    flagged = {a for a, r in zip(AGES, rows, strict=True) if OUTSIDE_POPULATION in r.warning_codes}
    assert flagged == OUTSIDE[model]
    assert all(r.ok for r in rows)
    assert len({tuple(_others(r.warning_codes)) for r in rows}) == 1
    one = TrustCheck.of(classifiers[model]).classify(load_xray(films["068Y"]))
    assert rows[0].warning_codes == one.codes  # the same verdict, batch or one image


def test_spark_rows_flag_ages_outside_the_population(classifiers, films):
    """The Spark executor's frames (what ``mapInPandas`` runs in each worker)."""
    pd = pytest.importorskip("pandas")
    from xraydesk.spark.executor import ModelRef, classify_frames

    for model, card_path in MODELS.items():
        ref = ModelRef.of(classifiers[model].card, device="cpu")
        assert Path(ref.card) == card_path
        frame = pd.DataFrame({"path": [str(films[a]) for a in AGES]})
        (out,) = list(classify_frames([frame], ref))
        assert out["error"].isna().all()
        flagged = {
            a for a, codes in zip(AGES, out["warnings"], strict=True) if OUTSIDE_POPULATION in codes
        }
        assert flagged == OUTSIDE[model], model
