"""Real chest films from ../shared/data, written to a test's own folder under any name.

Tests that need an answer (a class, a heat map, a profile to fit) use these: the input
gate rightly withholds the class of pixel noise and synthetic pictures, so a random PNG
no longer stands in for a radiograph. The pools are read in place; the copies live in
the test's temporary folder, never in the repository.
"""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

POOL = "covid19-radiography"  # adult PA films the bundled and test models all take


def pool_films(shared_data: Path, count: int, pool: str = POOL) -> list[Path]:
    """The first ``count`` films of ``pool``'s manifest (a fixed, repeatable choice)."""
    with open(shared_data / pool / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [shared_data / pool / row["path"] for row in rows[:count]]


def write_real_film(shared_data: Path, dest: Path, index: int = 0, size: int | None = None) -> Path:
    """Film number ``index`` of the pool written to ``dest`` (PNG, grey), enlarged to
    ``size`` x ``size`` when given; returns ``dest``."""
    source = pool_films(shared_data, index + 1)[index]
    image = Image.open(source).convert("L")
    if size is not None:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    dest.parent.mkdir(parents=True, exist_ok=True)
    image.save(dest, format="PNG")
    return dest
