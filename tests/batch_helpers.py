"""Small image folders for the batch tests, written with Pillow into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.dicom_factory import make_dicom


def write_png(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    """A distinct random grey image (distinct content: distinct sha256)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, size[::-1], dtype=np.uint8)).save(path)
    return path


def write_truncated_png(path: Path) -> Path:
    """Recognised as a PNG by its signature, but the data stops: an error row, not a skip."""
    good = write_png(path, seed=999)
    path.write_bytes(good.read_bytes()[:60])
    return path


def make_folder(root: Path, count: int = 5) -> Path:
    """root/img*.png, a truncated PNG, a DICOM without extension, a subfolder with one
    more PNG, plus a hidden file and a text file that must be skipped and counted."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_png(root / f"img{i}.png", seed=i)
    write_truncated_png(root / "broken.png")
    make_dicom(root / "scan", np.random.default_rng(7).integers(0, 4095, (40, 48), dtype=np.uint16))
    write_png(root / "sub" / "deep.png", seed=100)
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"junk")
    return root


def expected_order(root: Path, count: int = 5) -> list[Path]:
    """The walk's order: files of a folder by name, then its subfolders."""
    files = sorted([*(f"img{i}.png" for i in range(count)), "broken.png", "scan"])
    return [root / name for name in files] + [root / "sub" / "deep.png"]
