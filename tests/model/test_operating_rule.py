"""The operating rule a model card carries: round trip, integrity, and hostile values.

A card with a rule reads back the same rule; the integrity hash covers it (an edited
threshold, or a rule deleted from a card that had one, is refused); cards without a rule
keep their old hash. Values no chooser makes are refused with the file's name and the
field, even when the editor recomputed the hash.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xraydesk.errors import ModelError
from xraydesk.model.card import ModelCard
from xraydesk.model.card_file import MEANING_FIELDS, meaning_hash
from xraydesk.model.operating_rule import MARGIN, OperatingRule, confidence_of

RULE = OperatingRule(
    0.72,
    pools=("kermany-pediatric",),
    n=5179,
    coverage=0.41,
    accuracy=0.88,
    target_met=False,
    held_out={"kermany-pediatric": {"n": 5179, "coverage": 0.41, "accuracy": 0.88}},
    note="one pool only",
)


def _card_with_rule(test_model_path: Path, tmp_path: Path, rule: OperatingRule | None) -> Path:
    card = replace(ModelCard.read(test_model_path), operating_rule=rule)
    path = tmp_path / "ruled.json"
    card.write(path)
    return path


def test_round_trip(test_model_path: Path, tmp_path: Path) -> None:
    path = _card_with_rule(test_model_path, tmp_path, RULE)
    data = json.loads(path.read_text())
    assert "operating_rule" in data["integrity"]["covers"]
    assert data["operating_rule"]["target"].startswith("on sources not seen in training")
    again = ModelCard.read(path)
    assert again.operating_rule == RULE
    assert again.verified


def test_card_without_rule_keeps_its_hash(test_model_path: Path) -> None:
    data = json.loads(test_model_path.read_text())
    assert "operating_rule" not in data
    covers = data["integrity"]["covers"]
    assert covers[: len(MEANING_FIELDS)] == list(MEANING_FIELDS)
    assert "operating_rule" not in covers
    assert ModelCard.read(test_model_path).operating_rule is None


@pytest.mark.parametrize("edit", ["threshold", "delete", "null"])
def test_edited_rule_is_refused(test_model_path: Path, tmp_path: Path, edit: str) -> None:
    path = _card_with_rule(test_model_path, tmp_path, RULE)
    data = json.loads(path.read_text())
    if edit == "threshold":
        data["operating_rule"]["threshold"] = 0.0
    elif edit == "delete":
        del data["operating_rule"]
    else:
        data["operating_rule"] = None
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="integrity hash mismatch") as err:
        ModelCard.read(path)
    assert str(path) in str(err.value)


HOSTILE = [
    ("threshold", 1.0, "threshold 1.0 is outside 0..1"),
    ("threshold", 7, "threshold 7.0 is outside 0..1"),
    ("threshold", -0.2, "threshold -0.2 is outside 0..1"),
    ("threshold", float("nan"), "threshold nan is outside 0..1"),
    ("threshold", "high", "malformed operating_rule"),
    ("threshold", None, "malformed operating_rule"),
    ("measure", "entropy", "measure 'entropy' is not one of"),
    ("chosen_from", "the test split", "chosen_from 'the test split' is not one of"),
    ("max_error", 0.0, "max_error 0.0 not in"),
    ("coverage", 1.5, "coverage, accuracy or n out of range"),
    ("accuracy", float("inf"), "coverage, accuracy or n out of range"),
    ("n", -3, "coverage, accuracy or n out of range"),
    ("target_met", "yes", "target_met must be true or false"),
    ("pools", 5, "malformed operating_rule"),
    ("held_out", [1, 2], "malformed operating_rule"),
]


@pytest.mark.parametrize(
    ("field", "value", "message"), HOSTILE, ids=[f"{h[0]}-{h[1]}" for h in HOSTILE]
)
def test_hostile_rule_values(
    test_model_path: Path, tmp_path: Path, field: str, value: object, message: str
) -> None:
    path = _card_with_rule(test_model_path, tmp_path, RULE)
    data = json.loads(path.read_text())
    data["operating_rule"][field] = value
    data["integrity"]["sha256"] = meaning_hash(data)  # an editor who recomputes the hash
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError) as err:
        ModelCard.read(path)
    assert str(path) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("value", [[0.7], "0.7", 3])
def test_rule_that_is_not_an_object(test_model_path: Path, tmp_path: Path, value) -> None:
    path = _card_with_rule(test_model_path, tmp_path, RULE)
    data = json.loads(path.read_text())
    data["operating_rule"] = value
    data["integrity"]["sha256"] = meaning_hash(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="operating_rule must be an object"):
        ModelCard.read(path)


def test_measures() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [1.0, 0.0, 0.0]])
    assert confidence_of(probs, "top_probability") == pytest.approx([0.5, 0.34, 1.0])
    assert confidence_of(probs, MARGIN) == pytest.approx([0.2, 0.01, 1.0])
    assert OperatingRule(0.5).indeterminate(probs[1])
    assert not OperatingRule(0.5).indeterminate(probs[0])  # at the threshold: answered
    assert "Indeterminate below a top-class probability of 72%" in RULE.line
    assert "(target not reached)" in RULE.line
    assert RULE.summary == (
        "indeterminate below a top-class probability of 72% (rule from its held-out sources)"
    )
    assert OperatingRule(0.0).summary.startswith("answers every image")


def test_a_copy_of_a_bundled_model_may_set_its_own_rule(tmp_path: Path) -> None:
    """The anchor refuses bundled weights under another meaning, but not a stricter rule:
    a rule only withholds answers, never relabels one."""
    bundled = ModelCard.read(Path(__file__).resolve().parents[2] / "models" / "chest-3class.json")
    strict = replace(bundled, operating_rule=OperatingRule(0.95, pools=("my-site",), n=200))
    strict.write(tmp_path / "strict.json")
    assert ModelCard.read(tmp_path / "strict.json").operating_rule.threshold == 0.95
    warmer = replace(bundled, temperature=bundled.temperature * 2)
    warmer.write(tmp_path / "warmer.json")
    with pytest.raises(ModelError, match="uses the weights of the bundled model"):
        ModelCard.read(tmp_path / "warmer.json")
