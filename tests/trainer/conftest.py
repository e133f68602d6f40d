"""Fixtures of the trainer's tests: one torch thread, a small real subset, no bundled models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.training_data import kermany_rows, write_manifest
from xraydesk import paths


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine two spinning OpenMP threads can run
    ten times slower than one; tiny 64 px batches gain nothing from a second thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def subset(shared_data: Path, tmp_path: Path) -> Path:
    """36 images: 12 each of normal, bacterial, viral (absolute paths into the pool)."""
    return write_manifest(tmp_path / "kermany-subset.csv", kermany_rows(shared_data, 12))


@pytest.fixture
def no_bundled(monkeypatch, tmp_path):
    empty = tmp_path / "no-bundled"
    empty.mkdir()
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: empty)
    return empty
