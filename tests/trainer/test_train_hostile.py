"""Hostile labelled folders for the trainer's data check (hostile-input sweep): what a user
met through ``xraydesk train`` or the wizard is refused or handled at the engine."""

from __future__ import annotations

import os
from pathlib import Path

from xraydesk.trainer.dataset import Sample
from xraydesk.trainer.split import read_split, write_split


def test_split_file_keeps_a_file_name_that_is_not_utf8(tmp_path):
    """A non-UTF-8 file name (bytes on Linux) made writing the split a traceback."""
    image = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png"))
    sample = Sample(path=image, label="normal", raw_label="normal", source="p", sha256="0" * 64)
    write_split(tmp_path / "split.csv", [sample], ["train"])
    samples, splits = read_split(tmp_path / "split.csv")
    assert samples[0].path == image and splits == ["train"]
