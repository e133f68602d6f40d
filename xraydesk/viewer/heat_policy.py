"""When the viewer shows a heat map, and what it calls it (no Qt here).

A heat map names a class: over a film whose answer is held back (the input gate failed
and "Show anyway" was not clicked, or the result is indeterminate and its probabilities
are collapsed) the map and its label would give the hidden answer away, so they stay
hidden until the probabilities are shown; and a result that names no class stays
without a map even after its numbers are opened ("Show anyway", the indeterminate
result's one click): a map is what supports one class, so it would name the class the
verdict declined to give. A "Normal" answer gets no map by default:
there is no finding to locate, and a map over a normal film invites the reader to look
for one; the map is offered on request, labelled as what supports "Normal".

Exports follow the same rule (``may_export``): the PNG and the PDF carry a map only
when the viewer may show it and shows it, never one the screen holds back.
"""

from __future__ import annotations

from enum import StrEnum


class HeatHold(StrEnum):
    """Why the heat map of the image on screen is not shown."""

    ANSWER_HIDDEN = "answer_hidden"  # the probabilities are withheld or collapsed
    NO_CLASS = "no_class"  # the result names no class (gate, indeterminate), numbers open
    NORMAL = "normal"  # a "Normal" answer: offered, not shown by default


HOLD_TEXT = {
    HeatHold.ANSWER_HIDDEN: "Heat map hidden with the probabilities: it would give away "
    "the class they hold back.",
    HeatHold.NO_CLASS: "No heat map: the result names no class (indeterminate, or the "
    "image failed the input check), and a heat map shows what supports one class.",
    HeatHold.NORMAL: "No heat map by default for a Normal answer: there is no finding to locate.",
}


def is_normal_class(class_id: str | None, display_name: str | None = None) -> bool:
    """True for the class that means "no finding" (id or name ``normal``, any case)."""
    names = (class_id or "", display_name or "")
    return any(name.strip().lower() == "normal" for name in names)


def heat_hold(
    *,
    answer_hidden: bool,
    explained: str | None,
    explained_name: str | None = None,
    requested: bool = False,
    empty: bool = False,
    no_class: bool = False,
) -> HeatHold | None:
    """Why the map explaining ``explained`` is not shown now, or None to show it.

    ``answer_hidden``: the probabilities are not on screen (nothing asked for overrides
    that). ``requested``: the user asked for this map (the "show" button, or chose the
    class to explain), which lifts the Normal default. ``empty``: the map singles nothing
    out, so there is nothing to offer (the viewer says it is empty instead).
    ``no_class``: the verdict names no class (the input gate failed, or the result is
    indeterminate), whether or not the user opened its numbers: no map, ever."""
    if answer_hidden:
        return HeatHold.ANSWER_HIDDEN
    if no_class:
        return HeatHold.NO_CLASS
    if not requested and not empty and is_normal_class(explained, explained_name):
        return HeatHold.NORMAL
    return None


def heat_caption(class_name: str) -> str:
    """The label written on the image while the map shows: what it supports."""
    return f"Heat map: what supports {class_name}"


def may_export(hold: HeatHold | None, *, empty: bool, shown: bool) -> bool:
    """Whether an export (the PNG, the PDF report) may carry the heat map: only when
    ``heat_hold`` holds nothing back, the map is not empty and it is on screen (the
    overlay switched on), so an export never shows what the viewer would not."""
    return hold is None and not empty and shown
