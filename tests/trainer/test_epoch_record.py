"""The typed epoch record writes the history.json row with the keys earlier versions wrote
(the CLI's epoch line and the wizard read them; old runs' last.pt hold them)."""

from __future__ import annotations

import json

from xraydesk.trainer.epoch_record import EpochRecord

HISTORY_KEYS = {
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "seconds",
    "images_per_s",
}


def test_epoch_record_row_has_the_history_keys_and_values() -> None:
    record = EpochRecord(
        epoch=2,
        train_loss=0.5,
        train_acc=0.75,
        val_loss=0.625,
        val_acc=0.5,
        lr=1e-4,
        seconds=3.5,
        images_per_s=None,
    )
    row = record.to_dict()
    assert set(row) == HISTORY_KEYS
    assert json.loads(json.dumps(row)) == row  # history.json holds it as written
    assert row["epoch"] == 2 and row["val_loss"] == 0.625 and row["images_per_s"] is None
