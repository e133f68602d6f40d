"""Where a worker finds each listed file: a local path, or bytes staged in a temporary file.

Local files (plain paths, ``file:`` URIs with a name's bytes percent-encoded, relative
paths of a table) are read in place by the decode stage, as on the desktop. Bytes Spark
read (a ``content`` column, for remote storage) or read here through pyarrow's file
systems are written to a temporary file first, since the loader reads files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlparse

from xraydesk.batch.rows import display_text
from xraydesk.files import read_error

LOCAL_SCHEMES = ("", "file")
NOT_SCANNED = "empty file (0 bytes), or it could not be read"

# (shown path, local file to read, read error) per listed row
Staged = tuple[str, Path | None, str | None]


def local_path(uri: str, base: str | None = None) -> Path | None:
    """The local file behind a plain path or a ``file:`` URI (relative paths are taken
    from ``base``, the folder of the table that listed them); None for other schemes."""
    parsed = urlparse(uri)
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return Path(uri)
    if parsed.scheme not in LOCAL_SCHEMES:
        return None
    # file: URIs carry a name's bytes percent-encoded (names need not be UTF-8)
    path = Path(os.fsdecode(unquote_to_bytes(parsed.path))) if parsed.scheme else Path(uri)
    if not path.is_absolute() and base:
        path = Path(base) / path
    return path


def display_path(uri: str, base: str | None = None) -> str:
    """The path as results show it: a local path for local files, else the URI."""
    local = local_path(uri, base)
    return display_text(str(local)) if local is not None else uri


@contextlib.contextmanager
def staged(
    paths: Sequence[str], contents: Sequence[bytes | None] | None, base: str | None
) -> Iterator[list[Staged]]:
    """(shown path, local file, read error) per row. ``contents``: the bytes Spark read
    per row (remote storage; None where its scan passed over the file), or None when the
    listing has no content column. Staged copies live until the block ends."""
    remote = contents is not None
    with tempfile.TemporaryDirectory(prefix="xraydesk-spark-") as tmp:
        items: list[Staged] = []
        for k, uri in enumerate(paths):
            uri = str(uri)
            content = contents[k] if contents is not None else None
            local = local_path(uri, base)
            shown = display_text(str(local)) if local is not None else uri
            if remote and content is None:  # Spark's scan passed over it
                items.append((shown, None, NOT_SCANNED))
                continue
            if local is not None and content is None:
                items.append((shown, local, None))
                continue
            try:
                data = bytes(content) if content is not None else _read_remote(uri)
            except OSError as exc:
                items.append((shown, None, read_error(exc)))
                continue
            copy = Path(tmp) / f"{k}{Path(urlparse(uri).path).suffix}"
            copy.write_bytes(data)
            items.append((shown, copy, None))
        yield items


def _read_remote(uri: str) -> bytes:
    """A file on storage only pyarrow can reach from Python (s3://, gs://, hdfs://...)."""
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_file(path) as handle:
            return handle.read()
    except OSError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid etc. for an unusable URI
        raise OSError(f"{type(exc).__name__}: {exc}") from exc
