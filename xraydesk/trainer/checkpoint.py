"""A training run's folder: its settings, its split and its checkpoints.

Runs live in ``<data dir>/training/<NAME>/`` until they finish; the finished model goes
to the user's model library and the run folder is removed. Every file is written to a
temporary name and renamed over the target (``os.replace`` is atomic), so a run killed
at any instant leaves either the previous checkpoint or the new one, never half of one.
Checkpoints are plain torch state dicts written by us and read back with
``weights_only=True``: loading them cannot run code.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from xraydesk import paths
from xraydesk.errors import XRayDeskError
from xraydesk.files import write_atomic

RUNS_FOLDER = "training"
CONFIG_FILE = "run.json"
SPLIT_FILE = "split.csv"
LAST = "last.pt"
BEST = "best.pt"
CHECKPOINT_FORMAT = 1


class CheckpointError(XRayDeskError):
    """A checkpoint exists but cannot be used."""


def runs_dir() -> Path:
    path = paths.data_dir() / RUNS_FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunDir:
    """The folder of one training run, named after the model it will produce."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.root = runs_dir() / name

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def split_path(self) -> Path:
        return self.root / SPLIT_FILE

    def exists(self) -> bool:
        return self.config_path.is_file()

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".*.tmp"):  # left by a run killed mid-write
            stale.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- settings -----------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        write_atomic(self.config_path, json.dumps(config, indent=2) + "\n")

    def read_config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(
                f"{self.config_path}: cannot read the run settings ({exc})"
            ) from exc

    # -- checkpoints ----------------------------------------------------------------------------
    def save(self, which: str, state: dict[str, Any]) -> Path:
        """Write a checkpoint atomically (tmp file, fsync, rename)."""
        target = self.root / which
        tmp = self.root / f".{which}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as fh:
                import torch  # full mode only: the light build has no checkpoints

                torch.save({"format": CHECKPOINT_FORMAT, **state}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def load(self, which: str) -> dict[str, Any] | None:
        """A checkpoint, or None when there is none yet."""
        path = self.root / which
        if not path.is_file():
            return None
        try:
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a damaged file
            raise CheckpointError(
                f"{path}: the checkpoint is damaged ({exc}); start again with --restart"
            ) from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: not a checkpoint of this version of XRayDesk")
        return state

    def has(self, which: str) -> bool:
        return (self.root / which).is_file()
