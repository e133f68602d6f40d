"""The classify job's Spark schemas (``classify.output_schema``, the side job's note):
``StructType`` objects, never DDL strings (pyspark parses DDL in the JVM's SQL parser,
whose first use cost 0.15 CPU s on the first job's path), and the output schema is the
one the workers' batches have (``worker_classify.arrow_schema``): a column of another
type or order fails the job in the JVM."""

from __future__ import annotations

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("pyspark")

from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from xraydesk.spark import warm
from xraydesk.spark.classify import output_schema
from xraydesk.spark.worker_classify import arrow_schema


@pytest.mark.parametrize(
    "class_ids", [["normal"], ["normal", "pneumonia"], ["normal", "pneumonia", "covid"]]
)
def test_the_output_schema_is_the_workers_batches_schema(class_ids):
    schema = output_schema(class_ids)
    assert isinstance(schema, StructType)
    assert schema == from_arrow_schema(arrow_schema(class_ids))
    assert all(field.nullable for field in schema.fields)  # as a DDL string gave them
    assert schema.simpleString().startswith("struct<path:string,content_hash:string,")
    assert "warnings:array<string>" in schema.simpleString()


def test_the_side_job_s_schema_is_its_batches_schema(monkeypatch):
    """The side job runs first: its one column named as a ``StructType`` too, the very
    schema of the batch its workers send back."""
    from xraydesk.spark import worker_classify

    monkeypatch.setattr(worker_classify, "warm_up", lambda ref: "")
    (batch,) = list(warm._warm(iter([]), ref=None))
    assert isinstance(warm.note_schema(), StructType)
    assert warm.note_schema() == from_arrow_schema(batch.schema)
    assert batch.column("note").to_pylist() == [""]
