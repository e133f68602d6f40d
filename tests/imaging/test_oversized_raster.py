"""A raster over Pillow's warning size (89 million pixels) but under its hard limit: refused
by ``limits.check_size`` with a message naming the file, and no DecompressionBombWarning
from Pillow on stderr (it named Pillow's own source file and added noise to the CLI's
output). In a fresh interpreter, so the warning filters are what the app starts with."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

from tests.paths import REPO_ROOT

LOAD = """
import sys
from xraydesk.errors import ImageLoadError
from xraydesk.imaging import load_xray
try:
    load_xray(sys.argv[1])
except ImageLoadError as exc:
    print(exc)
"""


def _header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height``: nothing is decoded before the size
    check, so the test costs no memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_oversized_png_is_refused_without_pillows_warning(tmp_path: Path) -> None:
    path = _header_only_png(tmp_path / "huge.png", 10_000, 10_000)  # 100 million pixels
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "huge.png" in done.stdout and "image too large" in done.stdout
    assert "10000 x 10000" in done.stdout
    assert "DecompressionBombWarning" not in done.stderr, done.stderr
