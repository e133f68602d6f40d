"""Is the patient inside the population the model was trained on?

A pediatric model applied to an 81-year-old still gives a confident number; the card's
population (``ModelCard.population``) and the patient's age say it should not be read
as one. The age comes from the DICOM header (``ImageMetadata.age_years``) or from the
user; when neither is known, or the card does not state its population, nothing is said
(an unknown is not a warning).
"""

from __future__ import annotations

from xraydesk.imaging.age import format_age
from xraydesk.imaging.xray import ImageMetadata
from xraydesk.model.card import ModelCard
from xraydesk.trust.codes import OUTSIDE_POPULATION, ResultWarning


def population_warnings(
    card: ModelCard, metadata: ImageMetadata | None, stated_age: float | None = None
) -> list[ResultWarning]:
    """``[outside_population]`` when the patient's age is outside the card's age ranges,
    else ``[]``. ``stated_age`` (years, from the user) wins over the DICOM PatientAge: the
    user may know better than a header."""
    if stated_age is not None:
        age, source = float(stated_age), "as stated"
    elif metadata is not None and metadata.age_years is not None:
        age, source = metadata.age_years, "from the DICOM header"
    else:
        return []
    if card.population.contains_age(age) is not False:  # inside, or the card does not say
        return []
    message = (
        f"The patient's age ({format_age(age)}, {source}) is outside the population "
        f"{card.label} was trained on ({card.population.age_text}); its probabilities may "
        "not apply to this patient."
    )
    return [ResultWarning(OUTSIDE_POPULATION, message)]
