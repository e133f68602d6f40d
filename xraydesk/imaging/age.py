"""Patient age and sex from DICOM, as non-identifying facts a result can be judged by.

A model trained on children says little about an adult: the age travels with the image
so a result can carry an ``outside_population`` warning (``xraydesk.trust.population``).
Only the age and the sex are read here; name, id and birth date stay in ``PatientInfo``.
"""

from __future__ import annotations

import math
import re

DAYS_PER_YEAR = 365.25
# DICOM Age String (PS3.5 6.2, VR AS): nnnD, nnnW, nnnM or nnnY. Many files hold a bare
# number ("81"), which every viewer reads as years; so do we.
_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
_UNIT_YEARS = {"D": 1.0 / DAYS_PER_YEAR, "W": 7.0 / DAYS_PER_YEAR, "M": 1.0 / 12.0, "Y": 1.0}
MAX_AGE_YEARS = 130.0  # anything above is a typing error, not an age
# HIPAA Safe Harbor: ages over 89 are shown as one group, they can single a person out.
OLDEST_SHOWN = 90
SEXES = {"M": "M", "F": "F", "O": "O"}


def parse_dicom_age(text: str | None) -> float | None:
    """Age in years from a DICOM Age String (``068Y``, ``006M``, ``010W``, ``003D``, or a
    bare ``81``); None when absent or not an age."""
    if not text:
        return None
    match = _AGE.match(str(text))
    if match is None:
        return None
    years = int(match.group(1)) * _UNIT_YEARS[(match.group(2) or "Y").upper()]
    return years if math.isfinite(years) and years <= MAX_AGE_YEARS else None


def parse_dicom_sex(text: str | None) -> str | None:
    """``M``, ``F`` or ``O`` (other) from PatientSex; None when absent or anything else."""
    return SEXES.get(str(text or "").strip().upper())


def format_age(years: float) -> str:
    """An age as a reader says it: days, weeks, then months below two years, else years;
    90 and over as "90+ years" (see ``OLDEST_SHOWN``)."""
    if years >= OLDEST_SHOWN:
        return f"{OLDEST_SHOWN}+ years"
    if years < 2.0:
        months = int(years * 12.0 + 1e-9)
        if months < 1:
            days = int(years * DAYS_PER_YEAR + 1e-6)
            if days < 7:
                return f"{days} day{'s' if days != 1 else ''}"
            return f"{days // 7} week{'s' if days // 7 != 1 else ''}"
        return f"{months} month{'s' if months != 1 else ''}"
    return f"{int(years + 1e-9)} years"
