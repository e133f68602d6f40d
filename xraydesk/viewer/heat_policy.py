"""When the viewer shows a heat map, and what it calls it (no Qt here).

A heat map names a class: over a film whose answer is held back (the input gate failed
and "Show anyway" was not clicked, or the result is indeterminate and its probabilities
are collapsed) the map and its label would give the hidden answer away, so they stay
hidden until the probabilities are shown. A "Normal" answer gets no map by default:
there is no finding to locate, and a map over a normal film invites the reader to look
for one; the map is offered on request, labelled as what supports "Normal".
"""

from __future__ import annotations

from enum import StrEnum


class HeatHold(StrEnum):
    """Why the heat map of the image on screen is not shown."""

    ANSWER_HIDDEN = "answer_hidden"  # the probabilities are withheld or collapsed
    NORMAL = "normal"  # a "Normal" answer: offered, not shown by default


HOLD_TEXT = {
    HeatHold.ANSWER_HIDDEN: "Heat map hidden with the probabilities: it would give away "
    "the class they hold back.",
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
) -> HeatHold | None:
    """Why the map explaining ``explained`` is not shown now, or None to show it.

    ``answer_hidden``: the probabilities are not on screen (nothing asked for overrides
    that). ``requested``: the user asked for this map (the "show" button, or chose the
    class to explain), which lifts the Normal default. ``empty``: the map singles nothing
    out, so there is nothing to offer (the viewer says it is empty instead)."""
    if answer_hidden:
        return HeatHold.ANSWER_HIDDEN
    if not requested and not empty and is_normal_class(explained, explained_name):
        return HeatHold.NORMAL
    return None


def heat_caption(class_name: str) -> str:
    """The label written on the image while the map shows: what it supports."""
    return f"Heat map: what supports {class_name}"
