"""Can the model card itself be trusted? Said with every result, not only in a list.

A card written before integrity hashes existed (or one whose ``integrity`` record was
deleted) still loads, but nothing shows that its classes, display names or temperature
are the ones the model was made with: delete the record and swap two names, and a
COVID-19 film reads "Normal 72.9 %". Every result from such a card carries the
``card_unverified`` warning, through the one verdict (``trust.verdict.decide``) that the
CLI, the batch rows, the viewer's results panel, the DICOM node and Spark all share.
"""

from __future__ import annotations

from xraydesk.model.card import ModelCard
from xraydesk.trust.codes import CARD_UNVERIFIED, ResultWarning


def card_warnings(card: ModelCard) -> list[ResultWarning]:
    """``[card_unverified]`` for a card without an integrity record, else ``[]``."""
    if card.verified:
        return []
    where = card.path if card.path is not None else card.label
    message = (
        f"The model card of {card.label} ({where}) has no integrity record, so nothing "
        "shows that its class names, preprocessing and temperature are the ones the model "
        "was made with; read this result as unverified."
    )
    return [ResultWarning(CARD_UNVERIFIED, message)]
