"""Fitting a site profile (``model.site_profile``) on part of a validation, honestly.

Figures measured on the images that set a profile are optimistic: the temperature and
the thresholds were chosen to suit exactly those images. So the labelled images are split
in two by a seeded draw, whole patients at a time where the labels give a patient
(the CSV's ``patient`` column), else image by image: the profile is fitted on the first
part, and the report gives the held-back part's figures with and without it.

The profile's rule is applied to the held-back rows by the very methods the one verdict
uses (``SiteProfile.tempered``, ``indeterminate``, ``verdict.gate_withholds``), so the
figures are those users get: the site's rule replaces the card's (a row the card's rule
withheld is judged again by the site's), and a film the input gate flags stays withheld.
The temperature is fitted on every classified image the gate passed, answered or held
back by the card's rule alike, since the site's temperature applies to all of them.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from xraydesk.model.card import ModelCard
from xraydesk.model.site_profile import SiteProfile
from xraydesk.trainer.metrics import fit_temperature
from xraydesk.trust.codes import EVIDENCE_OUTSIDE_LUNGS, INDETERMINATE
from xraydesk.trust.group_answer import group_id, passing_group
from xraydesk.trust.site_rule import indeterminate_warning
from xraydesk.trust.verdict import gate_withholds
from xraydesk.validate.labels import LabelledSet
from xraydesk.validate.site_metrics import site_figures
from xraydesk.validate.site_run import SiteImage

DEFAULT_INDETERMINATE = 0.5
DEFAULT_SENSITIVITY = 0.9
FIT_SHARE = 0.5
_TINY = 1e-300


def split_fit_held(
    images: Sequence[SiteImage], seed: int = 0, fit_share: float = FIT_SHARE
) -> tuple[list[SiteImage], list[SiteImage]]:
    """(fit part, held-back part): a seeded draw of patients (or of images where no
    patient is given), so no patient is in both parts."""
    groups: dict[str, list[SiteImage]] = {}
    for s in images:
        key = f"patient:{s.image.patient}" if s.image.patient else f"image:{s.image.name}"
        groups.setdefault(key, []).append(s)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    cut = round(len(keys) * fit_share)
    fit_keys = set(keys[:cut])
    fit = [s for s in images if _key(s) in fit_keys]
    held = [s for s in images if _key(s) not in fit_keys]
    return fit, held


def _key(s: SiteImage) -> str:
    return f"patient:{s.image.patient}" if s.image.patient else f"image:{s.image.name}"


def fit_profile(
    card: ModelCard,
    fit: Sequence[SiteImage],
    *,
    indeterminate_below: float = DEFAULT_INDETERMINATE,
    sensitivity: float = DEFAULT_SENSITIVITY,
    folder: str = "",
    seed: int = 0,
) -> SiteProfile:
    """The site's temperature (NLL fit, as the card's) and per-class thresholds for
    ``sensitivity`` on the fit part's classified images the input gate passed."""
    ids = card.class_ids
    answered = [s for s in fit if _judged(s)]
    if not answered:
        from xraydesk.validate.labels import LabelError

        raise LabelError("no image of the fit part got an answer: no site profile can be fitted")
    probs = np.array([[s.row.probabilities[c] for c in ids] for s in answered], dtype=np.float64)
    y = np.array([ids.index(s.image.label) for s in answered])
    # log p * T_card is the logits up to a constant per row: softmax is blind to it
    logits = np.log(np.clip(probs, _TINY, 1.0)) * card.temperature
    temperature = float(fit_temperature(logits, y))
    draft = SiteProfile(card.name, card.weights_sha256, temperature, indeterminate_below, {})
    tempered = draft.tempered(probs, card.temperature)
    thresholds = {}
    for i, cid in enumerate(ids):
        scores = np.sort(tempered[y == i, i])
        if len(scores):  # the highest threshold that keeps ``sensitivity`` of them
            keep = int(np.ceil(sensitivity * len(scores)))
            thresholds[cid] = float(scores[len(scores) - keep]) if keep else 1.0
    return dataclasses.replace(
        draft,
        class_thresholds=thresholds,
        sensitivity=sensitivity,
        fitted_on={
            "n": len(fit),
            "n_answered": len(answered),
            "n_per_class": {c: int((y == i).sum()) for i, c in enumerate(ids)},
            "folder": folder,
            "seed": seed,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )


def _judged(s: SiteImage) -> bool:
    """Classified with probabilities (answered, or withheld by the card's rule), not
    flagged by the input gate and not withheld for evidence outside the lungs (a site's
    temperature leaves the answer's class, hence its heat map, as it was): what a site's
    temperature and rule apply to."""
    row = s.row
    if any(w.code == EVIDENCE_OUTSIDE_LUNGS for w in row.warnings):
        return False
    return row.error is None and row.probabilities is not None and not gate_withholds(row.warnings)


def with_profile(
    profile: SiteProfile, card: ModelCard, images: Sequence[SiteImage]
) -> list[SiteImage]:
    """The rows as the verdict gives them under ``profile``: probabilities at the site's
    temperature; the card's rule replaced by the site's (under its threshold no class and
    the ``indeterminate`` warning); errors and films the gate flags as they were."""
    ids = card.class_ids
    out = []
    for s in images:
        if not _judged(s):
            out.append(s)
            continue
        probs = profile.tempered(np.array([s.row.probabilities[c] for c in ids]), card.temperature)
        row = dataclasses.replace(
            s.row,
            probabilities={c: float(p) for c, p in zip(ids, probs, strict=True)},
            prediction=ids[int(np.argmax(probs))],
            indeterminate=False,
            finding=None,  # the card's rule's, if any: the profile's rule decides anew
            warnings=[w for w in s.row.warnings if w.code != INDETERMINATE],  # the card's
        )
        if profile.indeterminate(probs):
            found = passing_group(card, probs, profile.indeterminate)
            row.warnings.append(indeterminate_warning(card, profile, probs, found))
            row.prediction, row.indeterminate = None, True  # as ``ResultRow.take_verdict``
            row.finding = group_id(found)
        out.append(dataclasses.replace(s, row=row))
    return out


def profile_section(
    profile: SiteProfile, card: ModelCard, fit: Sequence[SiteImage], held: Sequence[SiteImage]
) -> dict[str, Any]:
    """The report's ``site_profile`` part: the profile, and the held-back part's figures
    with and without it (the fit part's only as the optimistic figure it is)."""
    ids = card.class_ids
    return {
        "profile": profile.to_dict(),
        "split": {
            "fit_images": len(fit),
            "held_back_images": len(held),
            "grouped_by": "patient" if any(s.image.patient for s in fit) else "image",
            "seed": profile.fitted_on.get("seed", 0),
        },
        "note": (
            "Figures measured on the images that set the profile are optimistic (the "
            "temperature and thresholds were chosen to suit them); the held-back part, "
            "which the profile never saw, gives the honest estimate."
        ),
        "held_back_without_profile": site_figures(held, ids) if held else None,
        "held_back_with_profile": site_figures(with_profile(profile, card, held), ids)
        if held
        else None,
        "fit_with_profile_optimistic": site_figures(with_profile(profile, card, fit), ids),
    }


def adopt_profile(
    card: ModelCard,
    labelled: LabelledSet,
    images: Sequence[SiteImage],
    seed: int = 0,
    indeterminate_below: float = DEFAULT_INDETERMINATE,
    sensitivity: float = DEFAULT_SENSITIVITY,
) -> dict[str, Any]:
    """Split, fit on one part, store the signed profile, and the report's section (with
    ``stored_in``, the profile's path). The CLI and the GUI's validation page share it."""
    from xraydesk.model.site_profile import save_profile

    fit, held = split_fit_held(images, seed)
    profile = fit_profile(
        card,
        fit,
        indeterminate_below=indeterminate_below,
        sensitivity=sensitivity,
        folder=str(labelled.folder),
        seed=seed,
    )
    path = save_profile(profile, card)
    return {**profile_section(profile, card, fit, held), "stored_in": str(path)}


def profile_lines(section: dict[str, Any]) -> list[str]:
    """What the command prints about the adopted profile."""
    p = section["profile"]
    lines = [
        f"site profile fitted on {section['split']['fit_images']} images: temperature "
        f"{p['temperature']:.3f}, indeterminate below {p['indeterminate_below']:.0%}, "
        "class thresholds " + ", ".join(f"{c} {t:.3f}" for c, t in p["class_thresholds"].items())
    ]
    for key, what in (("held_back_without_profile", "without"), ("held_back_with_profile", "with")):
        fig = section[key]
        if not fig:
            continue
        acc = (fig.get("metrics") or {}).get("accuracy")
        ece = (fig.get("metrics") or {}).get("ece")
        lines.append(
            f"held-back part ({fig['n_images']} images) {what} the profile: accuracy "
            f"{_num(acc)}, ECE {_num(ece)}, withheld {fig['withheld']['share']:.1%}"
        )
    lines.append(section["note"])
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
