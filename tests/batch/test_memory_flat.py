"""The batch engine keeps nothing per row: what it holds after 3N rows is what it held
after N (issue 28: a million-image archive must not need memory in proportion).

Measured with tracemalloc (the Python objects the engine and its threads keep, numpy
buffers included), not timed: the retained memory is sampled at the first row of each
batch once the pipeline is full, and the floor of the last third compared with the floor
of the first (the floor leaves out the prefetched inputs in flight at that moment).
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

from tests.batch_helpers import write_png
from xraydesk.batch.run import BatchOptions, BatchRun

DISTINCT = 60  # distinct tiny films; the rest of the rows are links to them
COPIES = 6  # DISTINCT * COPIES rows in all
PER_ROW_LIMIT = 100  # bytes a row may leave behind (a Path and a hash alone are ~200)


def _folder(root: Path) -> Path:
    """root/copyK/imgJ.png: the same films under COPIES folders (links, not copies)."""
    first = root / "copy0"
    films = [write_png(first / f"img{j:03d}.png", seed=j, size=(72, 64)) for j in range(DISTINCT)]
    for k in range(1, COPIES):
        folder = root / f"copy{k}"
        folder.mkdir()
        for film in films:
            os.symlink(film, folder / film.name)
    return root


def _retained() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_retained_memory_does_not_grow_with_rows(tmp_path, test_classifier):
    inputs = _folder(tmp_path / "films")
    total = DISTINCT * COPIES
    options = BatchOptions(
        recursive=True,
        skip_known=False,  # every row classified, as ``--no-skip``
        batch_size=8,
        workers=1,
        prefetch=8,
        db_path=tmp_path / "results.sqlite",
    )
    batch = BatchRun([inputs], test_classifier, options)
    samples: dict[int, int] = {}
    tracemalloc.start(1)
    try:
        for n, row in enumerate(batch.rows(), 1):
            assert row.ok, row.error
            # once the pipeline is full and warmed up, at the first row of each batch
            if n >= total // 6 and n % options.batch_size == 1:
                samples[n] = _retained()
    finally:
        tracemalloc.stop()
    assert batch.summary is not None and batch.summary.classified == total
    ordered = sorted(samples)
    third = len(ordered) // 3
    early = min(samples[n] for n in ordered[:third])
    late = min(samples[n] for n in ordered[-third:])
    rows_between = ordered[-third] - ordered[0]
    per_row = (late - early) / rows_between
    assert per_row < PER_ROW_LIMIT, (
        f"the engine kept {late - early} bytes more after {rows_between} more rows "
        f"({per_row:.0f} bytes per row; floor {early} -> {late})"
    )
