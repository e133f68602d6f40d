"""Issue 27 item 5: when the viewer shows a heat map (viewer.heat_policy), without Qt."""

from __future__ import annotations

from xraydesk.viewer.heat_policy import (
    HeatHold,
    heat_caption,
    heat_hold,
    is_normal_class,
    may_export,
)


def test_the_normal_class_is_known_by_id_or_name():
    assert is_normal_class("normal") and is_normal_class("NORMAL")
    assert is_normal_class("no_finding", "Normal")
    assert not is_normal_class("pneumonia", "Pneumonia") and not is_normal_class(None)


def test_a_hidden_answer_hides_every_map_even_one_asked_for():
    for explained in ("covid19", "normal"):
        for requested in (False, True):
            hold = heat_hold(answer_hidden=True, explained=explained, requested=requested)
            assert hold is HeatHold.ANSWER_HIDDEN
    assert heat_hold(answer_hidden=True, explained="covid19", empty=True) is HeatHold.ANSWER_HIDDEN


def test_a_result_naming_no_class_has_no_map_even_with_its_numbers_open():
    """Gate failed or indeterminate, the numbers opened ("Show anyway", the one click):
    still no map, whichever class it explains and even when asked for."""
    for explained in ("covid19", "normal"):
        for requested in (False, True):
            hold = heat_hold(
                answer_hidden=False, explained=explained, requested=requested, no_class=True
            )
            assert hold is HeatHold.NO_CLASS
    # while the numbers are hidden too, the hidden answer is the reason given
    assert heat_hold(answer_hidden=True, explained="covid19", no_class=True) is (
        HeatHold.ANSWER_HIDDEN
    )


def test_an_export_carries_only_a_map_that_may_be_shown_and_is_shown():
    assert may_export(None, empty=False, shown=True)
    assert not may_export(None, empty=True, shown=True)  # nothing to colour
    assert not may_export(None, empty=False, shown=False)  # switched off on screen
    for hold in HeatHold:  # held back on screen: never in an export
        assert not may_export(hold, empty=False, shown=True)


def test_normal_is_offered_not_shown_and_other_classes_are_shown():
    assert heat_hold(answer_hidden=False, explained="normal") is HeatHold.NORMAL
    assert heat_hold(answer_hidden=False, explained="x", explained_name="Normal") is HeatHold.NORMAL
    assert heat_hold(answer_hidden=False, explained="normal", requested=True) is None
    assert heat_hold(answer_hidden=False, explained="pneumonia") is None
    # an empty Normal map: nothing to offer, the viewer says it is empty instead
    assert heat_hold(answer_hidden=False, explained="normal", empty=True) is None


def test_the_label_says_what_the_map_supports():
    assert heat_caption("Normal") == "Heat map: what supports Normal"
