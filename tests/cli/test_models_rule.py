"""`xraydesk models` says each card's operating rule and where it was chosen."""

from __future__ import annotations

import json

from xraydesk.cli import main
from xraydesk.model.card import ModelCard
from xraydesk.paths import bundled_models_dir


def test_models_lists_the_cards_rules(capsys) -> None:
    cards = {p.stem: ModelCard.read(p) for p in sorted(bundled_models_dir().glob("*.json"))}
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, card in cards.items():
        assert card.operating_rule is not None, name
        assert f"{name}: {card.operating_rule.summary}" in out
        assert "(rule from its validation split)" in card.operating_rule.summary
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    for name, card in cards.items():
        rule = rows[name]["operating_rule"]
        assert rule["chosen_from"] == "validation_split"
        assert rule["threshold"] == card.operating_rule.threshold


def test_models_says_what_a_withheld_answer_still_names(capsys) -> None:
    """The paediatric card groups bacterial and viral: the listing and its JSON say so."""
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert (
        "pediatric-pneumonia: withheld, it still names Pneumonia when Bacterial pneumonia "
        "+ Viral pneumonia pass the rule together"
    ) in out
    assert "chest-3class: withheld" not in out  # no groups on its card
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    (group,) = rows["pediatric-pneumonia"]["class_groups"]
    assert group["classes"] == ["bacterial", "viral"] and group["name"] == "Pneumonia"
    assert rows["chest-3class"]["class_groups"] == []
