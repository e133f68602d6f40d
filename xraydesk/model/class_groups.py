"""Groups of a model's classes that mean one finding (bacterial and viral: pneumonia).

Why: the operating rule withholds a class the model is not sure of, and most films the
paediatric model withholds are ones it is sure are pneumonia, only not which kind (on its
test split, bacterial + viral passed its rule on 522 of the 608 films it withheld, and
99.8 % of those were pneumonia). A card's ``class_groups`` says which classes form such
a finding, so a withheld answer can still say what the model is sure of. A group is data
of the model, saved in its card like its classes, because only whoever trained it knows
which of its classes belong together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xraydesk.errors import ModelError


@dataclass(frozen=True)
class ClassGroup:
    """Classes (ids, two or more) that together mean one finding, ``name`` to users."""

    id: str
    name: str
    classes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "classes": list(self.classes)}

    def members(self, display_names: dict[str, str], joiner: str = " and ") -> str:
        """The member classes as users read them ("Bacterial and Viral")."""
        return joiner.join(display_names.get(c, c) for c in self.classes)


def groups_from_list(data: Any, class_ids: Sequence[str], where: str) -> tuple[ClassGroup, ...]:
    """The card's ``class_groups``; ``ModelError`` naming ``where`` for a group that is
    not two or more of the model's own classes, or that shares a class with another."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ModelError(f"{where}: class_groups must be a list of groups")
    groups: list[ClassGroup] = []
    taken: set[str] = set()
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("classes"), list):
            raise ModelError(f"{where}: a class group needs an id, a name and its classes")
        group = ClassGroup(
            str(item.get("id") or ""),
            str(item.get("name") or ""),
            tuple(str(c) for c in item["classes"]),
        )
        if not group.id.strip() or not group.name.strip():
            raise ModelError(f"{where}: a class group needs an id and a display name")
        unknown = [c for c in group.classes if c not in class_ids]
        if unknown:
            raise ModelError(
                f"{where}: class group {group.id!r} names {', '.join(unknown)}, "
                "not a class of this model"
            )
        if len(set(group.classes)) < 2 or len(set(group.classes)) == len(class_ids):
            raise ModelError(
                f"{where}: class group {group.id!r} must hold two or more of the model's "
                "classes, not all of them"
            )
        if taken & set(group.classes):
            raise ModelError(f"{where}: class group {group.id!r} shares a class with another")
        taken |= set(group.classes)
        groups.append(group)
    return tuple(groups)


def collapsed(
    probabilities: np.ndarray, class_ids: Sequence[str], groups: Sequence[ClassGroup]
) -> tuple[np.ndarray, list[str]]:
    """One row of probabilities with each group's classes summed into one entry, and the
    entries' names (a group's id, or a class id outside every group)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    grouped = {c: g for g in groups for c in g.classes}
    names: list[str] = []
    values: list[float] = []
    for i, cid in enumerate(class_ids):
        key = grouped[cid].id if cid in grouped else cid
        if key in names:
            values[names.index(key)] += float(probs[i])
        else:
            names.append(key)
            values.append(float(probs[i]))
    return np.array(values), names


def inherited_groups(
    base: Sequence[ClassGroup], class_ids: Sequence[str]
) -> tuple[ClassGroup, ...]:
    """A base model's groups that a model trained from it keeps: those whose classes are
    all among its own (a user's fine-tune with other classes keeps none it cannot mean)."""
    kept = []
    for group in base:
        if set(group.classes) <= set(class_ids) and len(group.classes) < len(class_ids):
            kept.append(group)
    return tuple(kept)
