"""A user's own model gets its operating rule from its validation split, marked as such.

Quick mode on 36 real Kermany images at 64 px (the trainer the wizard runs): the saved
card carries the rule, says it comes from the validation split (not held-out sources),
names the split's pool and size, and the one verdict applies it to the loaded model.
The floor on answered images is lowered for these few validation images; with the
real floor, so few images give a rule that answers everything and says why.
"""

from __future__ import annotations

import csv

import numpy as np

from tests.training_data import kermany_rows, write_manifest
from xraydesk.classifier import Classifier
from xraydesk.model.operating_rule import VALIDATION_SPLIT, confidence_of
from xraydesk.trainer import TrainConfig, operating_choice, train_model
from xraydesk.trust.verdict import decide


def test_users_model_rule_is_from_its_validation_split(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(operating_choice, "MIN_ANSWERED", 2)
    manifest = write_manifest(tmp_path / "site.csv", kermany_rows(shared_data, 12))
    config = TrainConfig(data=[str(manifest)], name="ur", size=64, batch=8, base="scratch")
    result = train_model(config)
    rule = result.card.operating_rule
    with open(result.card_path.with_suffix("") / "split.csv", newline="") as fh:
        val = [r for r in csv.DictReader(fh) if r["split"] == "val"]
    assert rule is not None and rule.chosen_from == VALIDATION_SPLIT
    pool = val[0]["source"]  # the manifest's pool, as the split file names it
    assert rule.n == len(val) and rule.pools == (pool,)
    assert f"validation split (not held-out sources): {pool}, n = {len(val)}" in rule.line
    assert "on the model's validation split" in rule.target_text
    classifier = Classifier.load(result.card_path, device="cpu")
    assert classifier.card.operating_rule == rule  # saved, signed and read back
    if rule.threshold > 0:
        unsure = np.full(3, 1 / 3)
        assert confidence_of(unsure, rule.measure) < rule.threshold
        verdict = decide(classifier, unsure)
        assert verdict.prediction is None and "indeterminate" in verdict.codes
        assert "model card's threshold" in verdict.warnings[-1].message


def test_too_few_validation_images_answer_everything() -> None:
    rule = operating_choice.validation_rule(
        np.zeros((5, 3)), np.zeros(5, dtype=int), 1.0, ["my-site"]
    )
    assert rule.threshold == 0.0 and not rule.target_met
    assert rule.chosen_from == VALIDATION_SPLIT
    assert "Only 5 validation images" in rule.note
