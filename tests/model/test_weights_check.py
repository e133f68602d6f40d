"""The weights file's check (``model.weights.verified_weights``): hashed once per process
while the file stays as it was, hashed again as soon as it changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from xraydesk.errors import ModelError
from xraydesk.model import weights
from xraydesk.model.card import ModelCard


@pytest.fixture
def card(test_model_path: Path, tmp_path: Path) -> ModelCard:
    """A copy of the test model in its own folder, free to damage."""
    folder = tmp_path / "model"
    shutil.copytree(test_model_path.parent, folder)
    return ModelCard.read(folder / test_model_path.name)


def _counting_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    hashed: list[Path] = []
    real = weights.sha256_file

    def counting(path: Path) -> str:
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(weights, "sha256_file", counting)
    return hashed


def test_an_unchanged_file_is_hashed_once(card: ModelCard, monkeypatch: pytest.MonkeyPatch):
    hashed = _counting_hashes(monkeypatch)
    for _ in range(3):
        assert weights.verified_weights(card) == card.weights_path
    assert hashed == [card.weights_path]


def test_a_file_damaged_in_place_is_refused(card: ModelCard, monkeypatch: pytest.MonkeyPatch):
    weights.verified_weights(card)
    hashed = _counting_hashes(monkeypatch)
    data = bytearray(card.weights_path.read_bytes())
    data[-1] ^= 0xFF  # one bit of the last weight, same size
    stat = card.weights_path.stat()
    card.weights_path.write_bytes(bytes(data))
    os.utime(card.weights_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    with pytest.raises(ModelError, match="do not match the sha256"):
        weights.verified_weights(card)
    assert hashed == [card.weights_path]


def test_a_replaced_file_is_hashed_again(card: ModelCard, tmp_path: Path):
    weights.verified_weights(card)
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"x" * card.weights_path.stat().st_size)
    stat = card.weights_path.stat()
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time, new inode
    os.replace(other, card.weights_path)
    with pytest.raises(ModelError, match="do not match the sha256"):
        weights.verified_weights(card)


def test_a_deleted_file_is_missing_even_after_a_check(card: ModelCard):
    weights.verified_weights(card)
    card.weights_path.unlink()
    with pytest.raises(ModelError, match="is missing"):
        weights.verified_weights(card)
