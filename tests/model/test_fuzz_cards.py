"""Fuzzing the model folder's cards, as tests/imaging/test_fuzz_loader.py fuzzes images (issue 26).

Seeded mutants of a real card (truncations, flipped and non-UTF-8 bytes, deleted keys,
values of the wrong type, huge numbers, NaN and infinities, deeply nested brackets, with
and without the integrity record) are dropped into the user library. Listing the library
(what ``xraydesk models`` and every model menu do), reading the card and checking its
weights must each either work or raise the project's ``ModelError``: never anything else.
"""

from __future__ import annotations

import json
import math
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from xraydesk import paths
from xraydesk.errors import ModelError
from xraydesk.files import sha256_file
from xraydesk.model import library
from xraydesk.model.card import MEANING_FIELDS, ModelCard, meaning_hash
from xraydesk.model.weights import verified_weights

COUNT = 300
SEED = 26


def _base_card(test_model_path: Path, folder: Path) -> dict[str, Any]:
    """The test model's card over a small weights file with the head and stem shapes a
    3-class, 1-channel ResNet-50 has (the shape check reads nothing else; hashing 94 MB
    for each of 400 mutants would take minutes)."""
    weights = folder / "fuzz.safetensors"
    save_file(
        {
            "fc.weight": np.zeros((3, 2048), np.float16),
            "conv1.weight": np.zeros((64, 1, 7, 7), np.float16),
        },
        str(weights),
    )
    data = json.loads(test_model_path.read_text(encoding="utf-8"))
    data["name"] = "fuzz"
    data["weights"].update(file=weights.name, sha256=sha256_file(weights))
    data["integrity"] = {"covers": list(MEANING_FIELDS), "sha256": meaning_hash(data)}
    return data


WRONG_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    1e308,
    float("nan"),
    float("inf"),
    -float("inf"),
    "",
    "x" * 10_000,
    [],
    {},
    [1, 2, 3],
    {"id": None},
]


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path in a JSON value (dict keys and list indexes)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:8]):
            yield from _paths(item, (*prefix, index))


def _at(data: Any, path: tuple) -> tuple[Any, Any]:
    for key in path[:-1]:
        data = data[key]
    return data, path[-1]


def _structural(data: dict, rng: np.random.Generator) -> str:
    mutant = json.loads(json.dumps(data))
    places = [p for p in _paths(mutant) if p]
    for _ in range(int(rng.integers(1, 4))):
        parent, key = _at(mutant, places[int(rng.integers(len(places)))])
        action = rng.integers(3)
        if action == 0:
            del parent[key]
        elif action == 1:
            parent[key] = WRONG_VALUES[int(rng.integers(len(WRONG_VALUES)))]
        else:
            parent[key] = "@NEST@"
        places = [p for p in _paths(mutant) if p]
        if not places:
            break
    if rng.random() < 0.5:  # without the record, values reach the value checks
        mutant.pop("integrity", None)
    depth = int(rng.choice([10, 1000, 200_000]))
    text = json.dumps(mutant, allow_nan=True)
    return text.replace('"@NEST@"', "[" * depth + "]" * depth)


def _huge_number(data: dict, rng: np.random.Generator) -> str:
    text = json.dumps({k: v for k, v in data.items() if k != "integrity"})
    field = str(rng.choice(["temperature", "size", "mean", "std", "channels"]))
    number = "9" * int(rng.choice([20, 400, 5000, 100_000]))
    key = f'"{field}": '
    start = text.index(key) + len(key)
    end = start + next(i for i, c in enumerate(text[start:]) if c in ",}")
    return text[:start] + number + text[end:]


def _byte_mutants(text: str, rng: np.random.Generator) -> bytes:
    data = bytearray(text.encode("utf-8"))
    kind = rng.integers(3)
    if kind == 0:  # truncated
        return bytes(data[: int(rng.integers(0, len(data)))])
    if kind == 1:  # flipped bytes
        for _ in range(int(rng.integers(1, 8))):
            i = int(rng.integers(len(data)))
            data[i] = int(rng.integers(256))
        return bytes(data)
    i = int(rng.integers(len(data)))  # invalid UTF-8 inside the text
    return bytes(data[:i]) + b"\xff\xfe\xc3(" + bytes(data[i:])


def _mutants(data: dict, count: int, seed: int) -> Iterator[bytes]:
    rng = np.random.default_rng(seed)
    text = json.dumps(data)
    makers: list[Callable[[], bytes]] = [
        lambda: _structural(data, rng).encode("utf-8"),
        lambda: _structural(data, rng).encode("utf-8"),
        lambda: _huge_number(data, rng).encode("utf-8"),
        lambda: _byte_mutants(text, rng),
    ]
    for _ in range(count):
        yield makers[int(rng.integers(len(makers)))]()


def _use(card: ModelCard) -> None:
    """What front doors do with a listed card: show it, check its weights, rewrite it."""
    _ = (card.label, card.display_names, card.class_ids, card.population.age_text)
    assert math.isfinite(card.temperature)
    json.dumps(card.to_dict(), allow_nan=False)
    verified_weights(card)


def test_listing_and_loading_mutated_cards_work_or_raise_model_error(
    test_model_path: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    folder = paths.user_models_dir()
    data = _base_card(test_model_path, folder)
    card_path = folder / "fuzz.json"
    card_path.write_text(json.dumps(data), encoding="utf-8")
    assert [c.name for c in library.list_models()] == ["fuzz"]  # the base card is good
    outcomes: Counter[str] = Counter()
    crashes: list[str] = []
    for number, mutant in enumerate(_mutants(data, COUNT, SEED)):
        card_path.write_bytes(mutant)
        try:
            listed = library.list_models()
            skipped = library.skipped_cards()
            assert len(listed) + len(skipped) == 1, (listed, skipped)
            assert all(str(card_path) in problem for problem in skipped), skipped
            try:
                card = ModelCard.read(card_path)
                _use(card)
            except ModelError as exc:
                assert str(card_path) in str(exc) or "weights" in str(exc), str(exc)
                outcomes["refused"] += 1
            else:
                outcomes["loaded"] += 1
        except Exception:  # anything but ModelError is a bug: collect, report all
            crashes.append(f"mutant {number}: {traceback.format_exc()[-1200:]}")
    assert not crashes, f"{len(crashes)} crashes:\n" + "\n".join(crashes[:5])
    # a fuzz run that refuses everything, or loads everything, tested nothing
    assert outcomes["refused"] > COUNT // 4 and outcomes["loaded"] > 0, outcomes


@pytest.mark.parametrize("depth", [1_000, 200_000])
def test_deep_nesting_anywhere_in_a_card_is_a_model_error(
    test_model_path: Path, tmp_path: Path, depth: int
):
    data = json.loads(test_model_path.read_text(encoding="utf-8"))
    for field in ("training", "metrics", "limitations", "weights"):
        mutant = dict(data, **{field: "@NEST@"})
        mutant.pop("integrity")
        path = tmp_path / f"{field}.json"
        nested = "[" * depth + "]" * depth
        path.write_text(json.dumps(mutant).replace('"@NEST@"', nested), encoding="utf-8")
        try:
            card = ModelCard.read(path)
        except ModelError as exc:
            assert str(path) in str(exc)
        else:  # accepted: then it must be usable like any other card
            json.dumps(card.to_dict())
