"""Arrow record batches laid out from numpy buffers, without ``pyarrow.array``.

Why: pyarrow (26) imports pandas at its first ``pa.array`` call, whatever the values
(it asks whether they are pandas objects), and a Spark worker that built one result batch
with ``RecordBatch.from_pydict`` spent about 0.5 CPU s importing pandas, which it never
uses (py-spy on local[2]'s workers, Intel Xeon family 6 model 207, 2 cores). A worker's
results are only strings, floats, booleans and lists of strings: their buffers are
simple to lay out here, and the batch is the one ``pa.RecordBatch.from_pydict`` gives
(tests/spark/test_arrow_columns.py compares them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_OFFSET = 2**31 - 1  # Arrow's string and list types have 32-bit offsets


def _validity(values: Sequence[Any]) -> tuple[Any, int]:
    """The validity bitmap buffer (None when nothing is null) and the null count."""
    import pyarrow as pa

    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    nulls = len(values) - int(valid.sum())
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def _offsets(lengths: Sequence[int]) -> Any:
    import pyarrow as pa

    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > MAX_OFFSET:
        raise ValueError("too much data for one Arrow batch (32-bit offsets)")
    return pa.py_buffer(offsets.astype(np.int32))


def strings(values: Sequence[str | None]) -> Any:
    """A ``string`` array (None: null)."""
    import pyarrow as pa

    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    bitmap, nulls = _validity(values)
    buffers = [bitmap, _offsets([len(e) for e in encoded]), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers, null_count=nulls)


def floats(values: Sequence[float | None]) -> Any:
    """A ``double`` array (None: null; NaN stays a number, as in ``pa.array``)."""
    import pyarrow as pa

    data = np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64)
    bitmap, nulls = _validity(values)
    return pa.Array.from_buffers(
        pa.float64(), len(values), [bitmap, pa.py_buffer(data)], null_count=nulls
    )


def booleans(values: Sequence[bool | None]) -> Any:
    """A ``bool`` array (None: null)."""
    import pyarrow as pa

    bits = np.packbits(np.array([bool(v) for v in values], dtype=bool), bitorder="little")
    bitmap, nulls = _validity(values)
    return pa.Array.from_buffers(
        pa.bool_(), len(values), [bitmap, pa.py_buffer(bits)], null_count=nulls
    )


def string_lists(values: Sequence[Sequence[str] | None]) -> Any:
    """A ``list<string>`` array (None: null)."""
    import pyarrow as pa

    items = [[] if v is None else list(v) for v in values]
    child = strings([s for item in items for s in item])
    bitmap, nulls = _validity(values)
    offsets = _offsets([len(item) for item in items])
    return pa.Array.from_buffers(
        pa.list_(pa.string()), len(values), [bitmap, offsets], null_count=nulls, children=[child]
    )


def record_batch(columns: Mapping[str, Sequence[Any]], schema: Any) -> Any:
    """``pa.RecordBatch.from_pydict(columns, schema=schema)`` for a schema of strings,
    doubles, booleans and lists of strings (what the workers return)."""
    import pyarrow as pa

    build = {pa.string(): strings, pa.float64(): floats, pa.bool_(): booleans}
    build[pa.list_(pa.string())] = string_lists
    arrays = []
    for field in schema:
        if field.type not in build:
            raise TypeError(f"{field.name}: no Arrow layout here for {field.type}")
        arrays.append(build[field.type](columns[field.name]))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
