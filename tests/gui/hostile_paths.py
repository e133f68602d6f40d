"""Hostile paths for the GUI's front doors (opening and saving), built in code in a
temporary folder: what a probe fed the app after the command line learnt to refuse them.

Each case is a name in the folder and the words its message must hold (the cause). The
named pipe ``x.png`` blocks whoever opens it for reading; a test that meets it must end.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from tests.dicom_factory import make_dicom
from tests.hostile_files import small_png

NON_UTF8 = os.fsdecode(b"caf\xe9-latin1.png")
NEWLINE = "new\nline.png"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(side: int = 100_000) -> bytes:
    """A tiny PNG whose header declares side x side pixels (Pillow's bomb limit)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + _chunk(b"IEND", b"")
    )


# name -> a word of the cause the message must hold (lower case)
UNREADABLE = {
    "zero.png": "empty",
    "truncated.png": "truncated.png",
    "truncated.dcm": "truncated.dcm",
    "text.png": "text.png",
    "bomb.png": "decompression bomb",
    "x.png": "named pipe",
    "dangling.png": "not found",
    "loop-a.png": "loop",
}


def write_hostile_paths(folder: Path) -> Path:
    """Write every case into ``folder`` (plus ``control.png``, a valid image, and the two
    valid images with hostile names); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    png = small_png()
    (folder / "control.png").write_bytes(png)
    (folder / "zero.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    pixels = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)
    make_dicom(folder / "whole.dcm", pixels, bits_stored=12)
    whole = (folder / "whole.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(whole[: len(whole) // 2])
    (folder / "whole.dcm").unlink()
    (folder / "text.png").write_text("this is not a PNG\n")
    (folder / "bomb.png").write_bytes(bomb_png())
    os.mkfifo(folder / "x.png")
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    (folder / "loop-a.png").symlink_to(folder / "loop-b.png")
    (folder / "loop-b.png").symlink_to(folder / "loop-a.png")
    (folder / NON_UTF8).write_bytes(png)
    (folder / NEWLINE).write_bytes(png)
    return folder


def link_loop(path: Path) -> Path:
    """``path``, a symbolic link to a second one beside it that links back: a picker may
    hand it back, and ``Path.is_dir`` raised on it instead of answering."""
    partner = path.with_name(path.name + "-partner")
    path.symlink_to(partner)
    partner.symlink_to(path)
    return path
