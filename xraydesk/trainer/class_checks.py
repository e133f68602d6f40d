"""Class names a model cannot carry: refused at the data check, before any training.

A class id is saved in the model card (UTF-8 JSON) and shown in every result, table and
report. A folder name that is not UTF-8 (raw bytes on Linux) cannot be saved at all, and
two classes that differ only in letter case (``Normal/`` and ``normal/``) are one class
to a reader and the same folder on Windows and macOS: both are refused with the fix.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path


def class_name_errors(classes: Sequence[str]) -> list[str]:
    """Why these class ids cannot name a model's classes (an empty list: they can)."""
    errors = []
    for cid in classes:
        try:
            cid.encode("utf-8")
        except UnicodeEncodeError:
            errors.append(
                f"The class folder {cid!a} has a name that is not valid UTF-8 "
                "text; rename the folder (a class name is saved in the model card)."
            )
    by_fold: dict[str, list[str]] = defaultdict(list)
    for cid in classes:
        by_fold[cid.casefold()].append(cid)
    for same in by_fold.values():
        if len(same) > 1:
            names = " and ".join(repr(c) for c in same)
            keep = next((c for c in same if c == c.lower()), same[0])
            other = next(c for c in same if c != keep)
            errors.append(
                f"The classes {names} differ only in letter case; merge them into one "
                f"folder, or rename one with --map {other}={keep}."
            )
    return errors


def owned_by(file: Path, root: Path, class_roots: Sequence[Path]) -> bool:
    """Whether ``file``, found in the class folder ``root`` (both resolved), is that
    class's image and not another class folder's reached through a link (``normal/loop
    -> ..``): such a link gave every image of the other class a second, conflicting
    label, and both were left out, so a whole class vanished."""
    for other in class_roots:
        if other != root and file.is_relative_to(other):
            return file.is_relative_to(root)  # unless that folder lies inside ours
    return True


def empty_class_errors(
    folders: Sequence[Path], found: Sequence[str], label_map: Mapping[str, str]
) -> list[str]:
    """A class subfolder of ``folders`` (sources without a manifest) with no usable image:
    it was dropped without a word, and a model meant for three classes came out with two."""
    errors = []
    for source in folders:
        for sub in sorted(p for p in source.iterdir() if p.is_dir() and p.name[:1] != "."):
            label = label_map.get(sub.name, sub.name)
            if label and label not in found:
                errors.append(
                    f"{sub}: the class folder holds no usable image (see the problems listed);"
                    " add images, remove the folder, or leave the class out (on the command"
                    f" line: --map {sub.name}=)."
                )
    return errors
