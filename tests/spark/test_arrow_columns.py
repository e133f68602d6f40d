"""The workers' result batches laid out from numpy buffers (``spark.arrow_columns``): the
same batch as ``pa.RecordBatch.from_pydict``, without importing pandas (pyarrow imports it
at its first ``pa.array``: 0.5 CPU s in every Spark worker)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tests.paths import REPO_ROOT

pa = pytest.importorskip("pyarrow")

SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("indeterminate", pa.bool_()),
        ("p_normal", pa.float64()),
        ("warnings", pa.list_(pa.string())),
        ("error", pa.string()),
    ]
)
COLUMNS = {
    "path": ["/a/b.png", "/ünï/cödé/x.dcm", "", "file:///c%FF.png"],
    "indeterminate": [False, True, None, False],
    "p_normal": [0.1 + 0.2, math.nan, None, 1e-300],
    "warnings": [[], ["not_chest", "rotated"], None, ["out_of_distribution"]],
    "error": [None, None, "cannot be read: permission denied", None],
}


def _rows(batch) -> list[dict]:
    rows = batch.to_pylist()
    for row in rows:  # NaN != NaN: compared as text
        row["p_normal"] = repr(row["p_normal"])
    return rows


def test_the_batch_is_from_pydicts():
    from xraydesk.spark.arrow_columns import record_batch

    ours = record_batch(COLUMNS, SCHEMA)
    ours.validate(full=True)
    theirs = pa.RecordBatch.from_pydict(COLUMNS, schema=SCHEMA)
    assert ours.schema == theirs.schema
    assert _rows(ours) == _rows(theirs)
    assert [ours.column(k).null_count for k in range(5)] == [0, 1, 1, 1, 3]


def test_an_empty_batch_and_a_batch_without_nulls():
    from xraydesk.spark.arrow_columns import record_batch

    empty = record_batch({name: [] for name in SCHEMA.names}, SCHEMA)
    empty.validate(full=True)
    assert empty.num_rows == 0 and empty.schema == SCHEMA
    note = pa.schema([("note", pa.string())])
    one = record_batch({"note": [""]}, note)
    one.validate(full=True)
    assert one.to_pylist() == [{"note": ""}] and one.column(0).null_count == 0


def test_a_type_it_does_not_lay_out_is_named():
    from xraydesk.spark.arrow_columns import record_batch

    with pytest.raises(TypeError, match="count: no Arrow layout here for int64"):
        record_batch({"count": [1]}, pa.schema([("count", pa.int64())]))


def test_pandas_stays_unimported():
    """What a worker does per batch: lay out a result batch and write it to Arrow's
    stream format, as pyspark does; pandas must not be imported by any of it."""
    code = (
        "import sys, pyarrow as pa\n"
        "from tests.spark.test_arrow_columns import COLUMNS\n"
        "from xraydesk.spark.worker_classify import arrow_schema\n"
        "from xraydesk.spark.arrow_columns import record_batch\n"
        "schema = pa.schema([(f.name, f.type) for f in arrow_schema(['normal'])])\n"
        "rows = {name: [None] * 4 for name in schema.names}\n"
        "rows.update(COLUMNS)\n"
        "batch = record_batch(rows, schema)\n"
        "sink = pa.BufferOutputStream()\n"
        "with pa.ipc.new_stream(sink, batch.schema) as out:\n"
        "    out.write_batch(batch)\n"
        "print(batch.num_rows, 'pandas' in sys.modules)\n"
    )
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "False"]
