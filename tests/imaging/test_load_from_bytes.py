"""``load_xray(path, data=...)``: a file decoded from the bytes the batch engine already read
(issue 28: one open an image, not three) is what the path gives, pixel for pixel, on real
films of every pool and the full-size samples; and each hostile file fails with the same
cause, naming the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.hostile_files import write_hostile_folder
from tests.real_films import pool_films
from xraydesk.errors import ImageLoadError
from xraydesk.imaging.loader import load_xray

POOLS = ("kermany-pediatric", "covid19-radiography", "ozturk-nih", "covid-cxnet")


def _outcome(path: Path, data: bytes | None):
    try:
        xray = load_xray(path, data=data)
    except ImageLoadError as exc:
        return ("error", str(exc.path), exc.cause)
    return ("ok", xray.pixels.tobytes(), xray.pixels.shape, xray.window, xray.notes,
            xray.metadata, xray.bits_stored, xray.inverted)  # fmt: skip


def test_real_films_decode_the_same_from_their_bytes(shared_data: Path):
    paths = [p for pool in POOLS for p in pool_films(shared_data, 5, pool)]
    paths += sorted((shared_data / "samples").glob("*/*"))
    assert len(paths) > 25
    for path in paths:
        from_bytes = _outcome(path, path.read_bytes())
        assert from_bytes[0] == "ok", from_bytes
        assert from_bytes == _outcome(path, None), path.name


def test_hostile_files_fail_the_same_from_their_bytes(tmp_path: Path):
    hostile = write_hostile_folder(tmp_path)
    checked = 0
    for name in hostile:
        path = tmp_path / name
        if not path.is_file() or path.stat().st_size == 0:
            continue  # the batch engine's check_file refuses these before reading
        assert _outcome(path, path.read_bytes()) == _outcome(path, None), name
        checked += 1
    assert checked >= 10


def test_pixels_from_bytes_are_their_own():
    """The decoded pixels do not alias the bytes they came from."""
    from tests.hostile_files import small_png

    data = small_png()
    xray = load_xray(Path("film.png"), data=data)
    assert xray.pixels.flags.writeable and not np.shares_memory(
        xray.pixels, np.frombuffer(data, np.uint8)
    )
