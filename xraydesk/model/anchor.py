"""The bundled models' cards, anchored in the program itself.

A card's integrity hash (``card.meaning_hash``) catches an edit, but not someone who
edits the card and recomputes the hash: swap two display names, recompute, and a COVID-19
film reads "Normal". So the digests of the cards and weights XRayDesk ships are also
recorded in the Python package (``bundled_digests.py``), which a person editing the model
folder does not also rewrite:

- a card in the shipped model folder loads only if its whole content matches the digest
  recorded for it (a card there the program does not know is refused as well);
- a card anywhere else that names a bundled model's weights (same sha256) must say what
  the bundled card says (same integrity hash): the bundled weights under swapped names
  are refused wherever the card is put.

``python -m xraydesk.model.anchor`` rewrites ``bundled_digests.py`` from models/; the test
``tests/cli/test_model_folder_hostile.py`` fails when models/ changes without it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from xraydesk.errors import ModelError
from xraydesk.model.card_file import meaning_hash, read_card_json

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
DIGESTS_FILE = Path(__file__).with_name("bundled_digests.py")
REGENERATE = "python -m xraydesk.model.anchor"
# Result-bearing fields a copy of a bundled model may set for itself.
_OWN_FIELDS = ("operating_rule",)


def shipped_models_dir() -> Path:
    """The model folder this copy of XRayDesk ships (a wheel's or frozen app's copy, else a
    checkout's models/); unlike ``paths.bundled_models_dir`` never redirected."""
    packaged = _PACKAGE_DIR / "bundled_models"
    return packaged if packaged.is_dir() else _PACKAGE_DIR.parent / "models"


def card_digest(data: Any) -> str:
    """sha256 of a card's whole JSON in a canonical form (key order, spacing and line
    endings do not count; every value does)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _digests() -> dict[str, dict[str, str]]:
    from xraydesk.model.bundled_digests import DIGESTS

    return DIGESTS


def anchored_meaning(data: dict[str, Any]) -> str:
    """The card's integrity hash with the weights file's name and the operating rule left
    out: a copy of a bundled model under another name, or with a rule of its own (a rule
    only withholds answers, as a site profile's does; it never relabels one), still says
    the same thing."""
    weights = data.get("weights")
    if isinstance(weights, dict):
        data = {**data, "weights": {**weights, "file": ""}}
    data = {key: value for key, value in data.items() if key not in _OWN_FIELDS}
    return meaning_hash(data)


def check_anchor(data: dict[str, Any], path: Path | None, weights: str) -> None:
    """Refuse a card that contradicts what the program recorded about its bundled models
    (``weights``: the sha256 of the weights it names)."""
    digests = _digests()
    if path is not None and _in_shipped_folder(path):
        known = digests.get(path.stem)
        if known is None or card_digest(data) != known["card"]:
            why = "is not one" if known is None else "differs from the one"
            raise ModelError(
                f"{path}: this bundled model card {why} this copy of XRayDesk was built "
                "with (its digest is recorded in the program); it may have been edited, so "
                f"the model is not loaded. Reinstall XRayDesk to restore it (developers: "
                f"after retraining a bundled model run `{REGENERATE}`)."
            )
        return
    for name, known in digests.items():
        if weights == known["weights"] and anchored_meaning(data) != known["meaning"]:
            raise ModelError(
                f"{path or 'model card'}: uses the weights of the bundled model {name!r} but "
                "changes its classes, display names, preprocessing or temperature; results "
                "from it could be mislabelled, so it is not loaded"
            )


def _in_shipped_folder(path: Path) -> bool:
    try:
        return path.resolve().parent == shipped_models_dir().resolve()
    except (OSError, RuntimeError):  # a symlink loop: not the shipped folder
        return False


def compute_digests(directory: Path) -> dict[str, dict[str, str]]:
    """What ``bundled_digests.py`` should hold for the cards in ``directory``."""
    digests = {}
    for card in sorted(directory.glob("*.json")):
        data = read_card_json(card)
        digests[card.stem] = {
            "card": card_digest(data),
            "meaning": anchored_meaning(data),
            "weights": str(data["weights"]["sha256"]),
        }
    return digests


def render(digests: dict[str, dict[str, str]]) -> str:
    """The text of ``bundled_digests.py``."""
    lines = [
        f'"""Generated by `{REGENERATE}` from models/: do not edit by hand.',
        "",
        "Per bundled model: the digest of its whole card (``anchor.card_digest``), its",
        "integrity hash without the weights file's name (``anchor.anchored_meaning``) and",
        'the sha256 of its weights."""',
        "",
        "DIGESTS: dict[str, dict[str, str]] = {",
    ]
    for name, entry in digests.items():
        lines.append(f"    {name!r}: {{")
        lines += [f'        "{key}": "{value}",' for key, value in entry.items()]
        lines.append("    },")
    return "\n".join([*lines, "}", ""]).replace("'", '"')


def write_digests() -> Path:
    """Rewrite ``bundled_digests.py`` from the shipped model folder (and what this
    process holds of it)."""
    digests = compute_digests(shipped_models_dir())
    DIGESTS_FILE.write_text(render(digests), encoding="utf-8")
    current = _digests()
    current.clear()
    current.update(digests)
    return DIGESTS_FILE


def refresh_if_shipped(directory: Path) -> None:
    """After a bundled model was trained straight into models/ (``training/
    train_bundled.py --out models/``): record its new card, so it loads."""
    if directory.resolve() == shipped_models_dir().resolve():
        write_digests()


def main() -> int:
    """Rewrite ``bundled_digests.py`` from the shipped model folder."""
    print(f"wrote {write_digests()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
