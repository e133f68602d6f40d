"""Hostile labelled folders for the trainer's data check (hostile-input sweep): what a user
met through ``xraydesk train`` or the wizard is refused or handled at the engine."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.hostile_files import small_png
from xraydesk.model.card import Preprocessing
from xraydesk.trainer.config import TrainConfig
from xraydesk.trainer.dataset import DatasetError, Sample, check_dataset
from xraydesk.trainer.forward import run_forward
from xraydesk.trainer.progress import TrainingError
from xraydesk.trainer.split import read_split, write_split


def _class_folder(root: Path | bytes, name: str | bytes, count: int, seed: int) -> None:
    folder = os.path.join(os.fsencode(root), os.fsencode(name))
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        with open(os.path.join(folder, f"img{i}.png".encode()), "wb") as fh:
            fh.write(small_png(seed=seed * 100 + i))


def test_class_folder_name_not_utf8_is_refused_at_the_check(tmp_path):
    """It used to pass the check, train, then fail with a UnicodeEncodeError traceback
    while writing the model card, leaving the weights file behind."""
    _class_folder(tmp_path, "normal", 3, 1)
    _class_folder(tmp_path, b"norm\xe9l", 3, 2)
    report = check_dataset([tmp_path], min_per_class=1)
    assert not report.ok
    [error] = [e for e in report.errors if "UTF-8" in e]
    assert "'norm\\udce9l'" in error and "rename the folder" in error


def test_classes_differing_only_in_case_are_refused(tmp_path):
    _class_folder(tmp_path, "normal", 3, 1)
    _class_folder(tmp_path, "Normal", 3, 2)
    _class_folder(tmp_path, "viral", 3, 3)
    report = check_dataset([tmp_path], min_per_class=1)
    assert not report.ok
    [error] = [e for e in report.errors if "letter case" in e]
    assert "'Normal' and 'normal'" in error and "--map Normal=normal" in error
    merged = check_dataset([tmp_path], min_per_class=1, label_map={"Normal": "normal"})
    assert merged.ok, merged.errors
    assert merged.counts == {"normal": 6, "viral": 3}


def test_split_file_keeps_a_file_name_that_is_not_utf8(tmp_path):
    """A non-UTF-8 file name (bytes on Linux) made writing the split a traceback."""
    image = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png"))
    sample = Sample(path=image, label="normal", raw_label="normal", source="p", sha256="0" * 64)
    write_split(tmp_path / "split.csv", [sample], ["train"])
    samples, splits = read_split(tmp_path / "split.csv")
    assert samples[0].path == image and splits == ["train"]


def test_a_batch_far_above_the_images_is_not_padded_to_its_size(tmp_path):
    """``--batch 100000000``: evaluation padded every batch to that size, a forward pass
    over a hundred million copies of the last image (the run never ended)."""
    _class_folder(tmp_path, "normal", 3, 1)
    samples = [
        Sample(path=p, label="normal", raw_label="normal", source="p")
        for p in sorted((tmp_path / "normal").iterdir())
    ]
    shapes = []

    def forward(inputs):
        shapes.append(tuple(inputs.shape))
        return np.zeros((len(inputs), 4), dtype=np.float32)

    out, ok = run_forward(forward, samples, [0, 1, 2], Preprocessing(size=32), 1000)
    assert shapes == [(3, 1, 32, 32)] and out.shape == (3, 4) and ok.all()


def test_an_absurd_epoch_count_is_refused():
    """``--epochs 999999999999`` trained on with an ETA of 200 million hours."""
    config = TrainConfig(data=["d"], name="n", mode="full", epochs=999_999_999_999)
    with pytest.raises(TrainingError, match=r"epochs must be at most 1000 \(got 999999999999\)"):
        config.validate()


def test_a_link_back_up_the_tree_does_not_relabel_another_class(tmp_path):
    """``normal/loop -> ..`` listed every bacterial image a second time as normal: all of
    them were conflicts, left out, and the check said only one class had images."""
    _class_folder(tmp_path, "normal", 3, 1)
    _class_folder(tmp_path, "bacterial", 3, 2)
    (tmp_path / "normal" / "loop").symlink_to("..")
    (tmp_path / "bacterial" / "self").symlink_to("../bacterial")
    report = check_dataset([tmp_path], min_per_class=1)
    assert report.ok, report.errors
    assert report.counts == {"normal": 3, "bacterial": 3}
    assert report.conflicts == []


def test_a_class_folder_without_a_usable_image_is_named(tmp_path):
    """An empty viral/ (or one holding only unreadable files) was dropped without a word:
    the model came out with two classes where the user laid out three."""
    _class_folder(tmp_path, "normal", 3, 1)
    _class_folder(tmp_path, "bacterial", 3, 2)
    (tmp_path / "viral").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    report = check_dataset([tmp_path], min_per_class=1)
    assert not report.ok
    named = [e for e in report.errors if "holds no usable image" in e]
    assert [e.split(":")[0] for e in named] == [str(tmp_path / "broken"), str(tmp_path / "viral")]
    dropped = check_dataset([tmp_path], min_per_class=1, label_map={"viral": "", "broken": ""})
    assert dropped.ok, dropped.errors


def test_a_problem_line_naming_a_non_utf8_file_does_not_lose_the_model(test_model_path, tmp_path):
    """Training on a folder holding ``caf\\xe9.png`` (a duplicate or unreadable file)
    ended in a UnicodeEncodeError traceback writing problems.txt: no model saved."""
    from safetensors.numpy import load_file

    from xraydesk.model.card import ModelCard
    from xraydesk.trainer.trained_card import save_trained_model

    card = ModelCard.read(test_model_path)
    weights = load_file(str(card.weights_path))
    card.name = "new-model"
    bad = os.fsdecode(b"/data/caf\xe9.png")
    library = tmp_path / "library"
    path = save_trained_model(
        library,
        card,
        weights,
        lambda p: p.write_text("path\n"),
        [],
        {},
        [f"{bad}: unreadable, left out (empty file (0 bytes))"],
    )
    assert path == library / "new-model.json" and path.is_file()
    text = (library / "new-model" / "problems.txt").read_text(encoding="utf-8")
    assert text == "/data/caf\\udce9.png: unreadable, left out (empty file (0 bytes))\n"


def test_a_named_pipe_as_the_data_source_is_named_as_such(tmp_path):
    """A named pipe given as DATA was reported "not found", though it is there."""
    pipe = tmp_path / "data.csv"
    os.mkfifo(pipe)
    with pytest.raises(DatasetError, match=r"data.csv: is a named pipe, not a folder or a file"):
        check_dataset([pipe])
    with pytest.raises(DatasetError, match=r"nothing: not found \(expected a folder or a CSV"):
        check_dataset([tmp_path / "nothing"])
