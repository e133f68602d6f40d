"""A model save that fails part-way leaves nothing behind (hostile-input sweep): the
weights used to stay in the library without a card when the card could not be written."""

from __future__ import annotations

from pathlib import Path

import pytest

from xraydesk.model.card import ModelCard
from xraydesk.model.saving import load_network, save_model


def test_a_card_that_cannot_be_written_leaves_no_weights(test_model_path: Path, tmp_path: Path):
    card = ModelCard.read(test_model_path)
    network = load_network(card)
    card.name = "new-model"

    def disk_full(path: Path) -> None:
        raise OSError(28, "No space left on device")

    card.write = disk_full  # type: ignore[method-assign]
    library = tmp_path / "library"
    with pytest.raises(OSError, match="No space left"):
        save_model(network, card, library)
    assert sorted(p.name for p in library.iterdir()) == []
