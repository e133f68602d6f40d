"""Issue 19 #4: each model card states its population, and a result for a patient outside
it carries an ``outside_population`` warning (the stable codes of issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.dicom_factory import make_dicom
from tests.model_factory import make_test_model
from tests.paths import REPO_ROOT
from xraydesk.errors import ModelError
from xraydesk.imaging import load_xray
from xraydesk.imaging.age import format_age, parse_dicom_age, parse_dicom_sex
from xraydesk.model.card import AgeRange, ModelCard, Population
from xraydesk.trainer.config import TrainConfig
from xraydesk.trainer.progress import TrainingError
from xraydesk.trainer.trained_card import card_population
from xraydesk.trust import WARNING_CODES, ResultWarning, population_warnings
from xraydesk.trust.codes import OUTSIDE_POPULATION

PEDIATRIC = REPO_ROOT / "models" / "pediatric-pneumonia.json"
CHEST = REPO_ROOT / "models" / "chest-3class.json"
DAY = 1 / 365.25


# -- age and sex from DICOM --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("068Y", 68.0),
        ("006M", 0.5),
        ("010W", 70 * DAY),
        ("003D", 3 * DAY),
        ("81", 81.0),  # a bare number, as in real files: years
        (" 005y ", 5.0),
        (None, None),
        ("", None),
        ("adult", None),
        ("-5Y", None),
        ("999Y", None),  # not a human age
        ("12X", None),
    ],
)
def test_dicom_age_strings(text, years):
    got = parse_dicom_age(text)
    assert got == (None if years is None else pytest.approx(years))


def test_sex_and_age_wording():
    assert [parse_dicom_sex(s) for s in ("M", "f", "O", "", None, "X")] == [
        "M",
        "F",
        "O",
        None,
        None,
        None,
    ]
    assert format_age(68.4) == "68 years"
    assert format_age(0.5) == "6 months"
    assert format_age(3 * DAY) == "3 days"
    assert format_age(21 * DAY) == "3 weeks"
    assert format_age(1.99) == "23 months"
    assert format_age(93) == "90+ years"  # ages over 89 are grouped (HIPAA Safe Harbor)


def test_real_dicom_samples_carry_age_and_sex(samples_dir):
    nih = load_xray(samples_dir / "dicom" / "nih-dx-uncompressed.dcm").metadata
    rsna = load_xray(samples_dir / "dicom" / "rsna-cr-jpeg-baseline.dcm").metadata
    nema = load_xray(samples_dir / "dicom" / "cr-monochrome1-10bit-no-preamble.dcm").metadata
    assert (nih.age_years, nih.sex) == (81.0, "M")
    assert (rsna.age_years, rsna.sex) == (68.0, "F")
    assert (nema.age_years, nema.sex) == (None, None)


def test_age_string_units_and_bad_values_in_a_file(tmp_path):
    pixels = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    months = make_dicom(tmp_path / "m.dcm", pixels, extra={"PatientAge": "018M", "PatientSex": "F"})
    junk = make_dicom(tmp_path / "j.dcm", pixels, extra={"PatientAge": "old", "PatientSex": "?"})
    assert load_xray(months).metadata.age_years == pytest.approx(1.5)
    assert load_xray(months).metadata.sex == "F"
    assert (load_xray(junk).metadata.age_years, load_xray(junk).metadata.sex) == (None, None)
    png_like = load_xray(make_dicom(tmp_path / "n.dcm", pixels)).metadata
    assert png_like.age_years is None


# -- the population on the card ----------------------------------------------------------------


def test_bundled_cards_state_their_population_and_stay_verified():
    pediatric, chest = ModelCard.read(PEDIATRIC), ModelCard.read(CHEST)
    assert pediatric.verified and chest.verified
    assert pediatric.population.age_ranges == (AgeRange(1, 5),)
    assert chest.population.age_ranges == (AgeRange(1, 5), AgeRange(18, None))
    assert "Guangzhou" in pediatric.population.description
    assert chest.population.age_text == "1-5 years or 18+ years"


def test_age_ranges_count_completed_years():
    one_to_five = AgeRange(1, 5)
    assert one_to_five.contains(1.0) and one_to_five.contains(5.9)
    assert not one_to_five.contains(11 / 12) and not one_to_five.contains(6.0)
    assert AgeRange(18, None).contains(101) and not AgeRange(18, None).contains(17.9)
    assert AgeRange.parse("18-") == AgeRange(18, None)
    assert AgeRange.parse(" -5") == AgeRange(None, 5)
    assert Population.parse_ages("1-5,18-").age_text == "1-5 years or 18+ years"
    for bad in ("5", "a-b", "6-1", "-1-4", ""):
        with pytest.raises(ValueError):
            Population.parse_ages(bad)


def test_a_card_from_before_the_field_loads_without_a_population(test_model_path, tmp_path):
    data = json.loads(test_model_path.read_text())
    del data["population"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    card = ModelCard.read(old)
    assert card.verified and not card.population.stated
    assert card.population.contains_age(80) is None and card.population.age_text == "not stated"


def test_the_population_is_outside_the_integrity_hash_but_checked(test_model_path, tmp_path):
    """It does not change a probability, so editing it does not refuse the model; a range
    that makes no sense is refused as a malformed card."""
    data = json.loads(test_model_path.read_text())
    data["population"] = {"age_ranges": [{"min_years": 40, "max_years": 90}]}
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    assert ModelCard.read(edited).population.age_ranges == (AgeRange(40, 90),)
    assert "population" not in data["integrity"]["covers"]
    data["population"] = {"age_ranges": [{"min_years": 9, "max_years": 2}]}
    edited.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="malformed"):
        ModelCard.read(edited)
    data["population"] = {"age_ranges": ["adults"]}
    edited.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="malformed"):
        ModelCard.read(edited)


# -- the warning -------------------------------------------------------------------------------


def test_adult_films_on_the_pediatric_model_are_flagged(samples_dir):
    pediatric, chest = ModelCard.read(PEDIATRIC), ModelCard.read(CHEST)
    for name, age in (("nih-dx-uncompressed.dcm", "81 years"), ("rsna-cr-jpeg-baseline.dcm", "68")):
        metadata = load_xray(samples_dir / "dicom" / name).metadata
        (warning,) = population_warnings(pediatric, metadata)
        assert warning.code == OUTSIDE_POPULATION
        assert age in warning.message and "1-5 years" in warning.message
        assert "pediatric-pneumonia 1.0" in warning.message
        assert population_warnings(chest, metadata) == []  # adults are in its population


def test_a_stated_age_wins_and_unknown_says_nothing(samples_dir):
    pediatric, chest = ModelCard.read(PEDIATRIC), ModelCard.read(CHEST)
    adult = load_xray(samples_dir / "dicom" / "nih-dx-uncompressed.dcm").metadata
    unknown = load_xray(samples_dir / "dicom" / "cr-monochrome1-10bit-no-preamble.dcm").metadata
    assert population_warnings(pediatric, adult, stated_age=3) == []
    (warning,) = population_warnings(chest, unknown, stated_age=10)  # between 5 and 18
    assert "as stated" in warning.message and "10 years" in warning.message
    assert population_warnings(pediatric, unknown) == []
    assert population_warnings(pediatric, None) == []
    (infant,) = population_warnings(pediatric, None, stated_age=0.5)
    assert "6 months" in infant.message


def test_no_warning_when_the_card_does_not_say(test_model_path, samples_dir):
    adult = load_xray(samples_dir / "dicom" / "nih-dx-uncompressed.dcm").metadata
    assert population_warnings(ModelCard.read(test_model_path), adult) == []


def test_warning_codes_are_stable_and_checked():
    assert WARNING_CODES == (
        "not_chest",
        "rotated",
        "inverted",
        "lateral",
        "out_of_distribution",
        "low_quality",
        "outside_population",
        "card_unverified",
        "indeterminate",
        "site_profile_refused",
        "evidence_outside_lungs",
        "mirrored",
    )
    warning = ResultWarning("rotated", "Rotated 90 degrees.")
    assert ResultWarning.from_dict(warning.to_dict()) == warning
    assert warning.to_dict() == {"code": "rotated", "message": "Rotated 90 degrees."}
    with pytest.raises(ValueError, match="unknown warning code"):
        ResultWarning("sideways", "?")


# -- new models --------------------------------------------------------------------------------


def test_a_new_model_inherits_or_states_its_population(tmp_path):
    base = ModelCard.read(make_test_model(tmp_path))
    base.population = Population((AgeRange(1, 5),), "children")
    config = TrainConfig(data=["x"], name="n")
    assert card_population(config, base) == base.population
    assert card_population(config, None) == Population()
    config.population_age = "18-"
    assert card_population(config, base).age_ranges == (AgeRange(18, None),)
    config.population_age = "old"
    with pytest.raises(TrainingError, match="population"):
        config.validate()
